import { test } from 'tap'
import { eq, getTableColumns, type Table } from 'drizzle-orm'
import { auditEvents, documents, ingestionEvents, ingestions } from '../../drizzle/schema/index.js'
import { sqlAtomic } from '../../src/db.js'
import {
  AUDIT_COLUMNS, DOCUMENT_COLUMNS, DOCUMENT_JSON_COLUMNS, DOCUMENT_JSON_MEMBERS, EVENT_COLUMNS, FIND_INGESTION_SQL, FIND_INGESTION_WITH_DOCUMENT_SQL,
  INGESTION_COLUMNS, INGESTION_INSERT_COLUMNS, guardedEventsInsert, toDocumentRow, toIngestionRow, withError,
  type DocumentJsonRow, type RawDocumentRow, type RawIngestionRow,
} from '../../src/db/hot-paths.js'
import { toDocument } from '../../src/domain/documents.js'
import { newId } from '../../src/lib/ids.js'
import { Document } from '../../src/schemas/documents.js'
import { build, createUser } from '../helper.js'
import { createDocument } from '../ingestion/helpers.js'

// The hand-written SQL of the hot paths (src/db/hot-paths.ts) against the drizzle schema and
// `toDocument`: a column added, renamed or dropped in one and not the other fails here.
const dbNames = (table: Table): string[] => Object.values(getTableColumns(table)).map(c => c.name).sort()
const list = (cols: string): string[] => cols.split(',').map(c => c.trim().replace(/^d\./, '')).sort()

test('column lists name the drizzle schema\'s columns', async (t) => {
  t.strictSame(list(DOCUMENT_COLUMNS), dbNames(documents), 'DOCUMENT_COLUMNS: every documents column')
  t.strictSame([...INGESTION_COLUMNS].sort(), dbNames(ingestions), 'INGESTION_COLUMNS: every ingestions column')
  t.strictSame(list(EVENT_COLUMNS), dbNames(ingestionEvents).filter(c => c !== 'id'), 'EVENT_COLUMNS: all but the auto id')
  t.strictSame(list(AUDIT_COLUMNS), dbNames(auditEvents).filter(c => c !== 'id'), 'AUDIT_COLUMNS: all but the auto id')
  const ingestionCols = new Set(dbNames(ingestions))
  for (const c of list(INGESTION_INSERT_COLUMNS)) t.ok(ingestionCols.has(c), `INGESTION_INSERT_COLUMNS: ${c}`)
  // the document JSON's members: the Document schema's, in its order (the optional `error` apart)
  t.strictSame(DOCUMENT_JSON_MEMBERS.map(([name]) => name), Object.keys(Document.properties).filter(k => k !== 'error'))
})

test('raw rows map to what drizzle reads; the document JSON is toDocument\'s', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const plain = await createDocument(app, owner.id)
  const tricky = await createDocument(app, owner.id, { filename: 'r\u00e9sum\u00e9 "v2" \\ \u{1F600}.txt', visibility: 'internal' })
  await app.db.update(documents).set({
    title: 'Quotes " and \\, \u4e2d\u6587 \u2028',
    description: 'a\nb',
    tags: ['x', 'b\u00eata'],
    metadata: { n: [1, 2.5, null, 'x"y'], big: 12345678901234 },
    thumbnailKey: 'thumbnails/x',
    thumbnailWidth: 320,
    thumbnailHeight: 200,
    version: 7,
    deletedAt: new Date('2026-03-04T05:06:07.089Z'),
  }).where(eq(documents.id, tricky.id))
  const failed = await createDocument(app, owner.id)
  await app.db.update(documents).set({ status: 'failed', error: 'bad "input"\n\\' }).where(eq(documents.id, failed.id))

  for (const id of [plain.id, tricky.id, failed.id]) {
    const [drizzleRow] = await app.db.select().from(documents).where(eq(documents.id, id))
    const [raw] = await app.db.$client.execute(`SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ?`, [id]) as unknown as [RawDocumentRow[]]
    t.strictSame(toDocumentRow(raw[0]!), drizzleRow, `toDocumentRow = drizzle's row (${id})`)
    const [rows] = await app.db.$client.execute(`SELECT ${DOCUMENT_JSON_COLUMNS} FROM documents d WHERE d.id = ?`, [id]) as unknown as [DocumentJsonRow[]]
    const text = withError(rows[0]!)
    const reference = toDocument(drizzleRow!)
    t.strictSame(JSON.parse(text), JSON.parse(JSON.stringify(reference)), `the JSON = toDocument (${id})`)
    t.strictSame(Object.keys(JSON.parse(text) as object), Object.keys(reference), 'members in the same order')
  }

  const ingestionId = newId()
  const now = new Date('2026-05-06T07:08:09.010Z')
  await app.db.insert(ingestions).values({
    id: ingestionId,
    documentId: tricky.id,
    status: 'running',
    pipeline: 'p',
    options: { a: [1, 'x'], b: { c: null } },
    attempts: 2,
    lastError: 'e "q"',
    result: { ok: true },
    requestedBy: owner.id,
    idempotencyKey: 'k',
    requestId: 'r',
    createdAt: now,
    updatedAt: now,
    startedAt: now,
    finishedAt: null,
    enqueuedAt: now,
  })
  t.teardown(async () => { await app.db.delete(ingestions).where(eq(ingestions.id, ingestionId)) })
  const [drizzleIngestion] = await app.db.select().from(ingestions).where(eq(ingestions.id, ingestionId))
  const [found] = await app.db.$client.execute(FIND_INGESTION_SQL, [ingestionId]) as unknown as [RawIngestionRow[]]
  t.strictSame(toIngestionRow(found[0]!), drizzleIngestion, 'toIngestionRow = drizzle\'s row')
  const [nested] = await app.db.$client.query({ sql: FIND_INGESTION_WITH_DOCUMENT_SQL, nestTables: true }, [ingestionId]) as unknown as [Array<{ i: RawIngestionRow, d: RawDocumentRow }>]
  t.strictSame(toIngestionRow(nested[0]!.i), drizzleIngestion)
  const [drizzleDoc] = await app.db.select().from(documents).where(eq(documents.id, tricky.id))
  t.strictSame(toDocumentRow(nested[0]!.d), drizzleDoc)

  // the guarded events INSERT writes after a changing UPDATE only
  const at = new Date()
  await sqlAtomic(app.db, [
    ['UPDATE ingestions SET attempts = attempts WHERE id = ?', ['no-such-row']],
    ['SET @quire_changed = ROW_COUNT()', []],
    guardedEventsInsert(ingestionId, [{ type: 'a', message: 'skipped' }], at),
    ['UPDATE ingestions SET attempts = attempts + 1 WHERE id = ?', [ingestionId]],
    ['SET @quire_changed = ROW_COUNT()', []],
    guardedEventsInsert(ingestionId, [{ type: 'b', message: 'one', data: { x: 1 } }, { type: 'c', message: 'two' }], at),
  ])
  t.teardown(async () => { await app.db.delete(ingestionEvents).where(eq(ingestionEvents.ingestionId, ingestionId)) })
  const events = await app.db.select().from(ingestionEvents).where(eq(ingestionEvents.ingestionId, ingestionId)).orderBy(ingestionEvents.id)
  t.strictSame(events.map(e => [e.type, e.message, e.data]), [['b', 'one', { x: 1 }], ['c', 'two', null]])
})
