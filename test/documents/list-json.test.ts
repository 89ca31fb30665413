import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { build, createUser } from '../helper.js'
import { documents } from '../../drizzle/schema/index.js'
import { createDocument, share } from '../ingestion/helpers.js'
import build2 from 'fast-json-stringify'
import { Document } from '../../src/schemas/documents.js'
import { getDocumentRow, toDocument } from '../../src/domain/documents.js'

// GET /documents and GET /documents/:id answer rows whose JSON MySQL/MariaDB built
// (src/domain/documents.ts JSON_COLUMNS). Each must be exactly what the row gives through
// `toDocument` and the Document response schema (the reference), whatever the row holds.
const stringify = build2(Document as never)

test('listed and single documents are member for member toDocument + the Document schema', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const reader = await createUser(app, 'viewer')
  const admin = await createUser(app, 'admin')

  const plain = await createDocument(app, owner.id)
  const tricky = await createDocument(app, owner.id, { filename: 'r\u00e9sum\u00e9 "final" \\ v2 \u{1F600}.txt', visibility: 'internal' })
  await app.db.update(documents).set({
    title: 'Quotes " and \\ backslash, tab-free, \u00fcml\u00e4ut, \u4e2d\u6587, emoji \u{1F4C4}, \u2028 separator',
    description: 'line one\nline two with "quotes" and </script>',
    tags: ['alpha', 'b\u00eata', 'with space'],
    metadata: { nested: { deep: [1, 2.5, -3, true, null, 'x"y'] }, big: 12345678901234, unicode: '\u{1F600}', empty: {} },
    thumbnailKey: `thumbnails/${tricky.id}`,
    thumbnailWidth: 320,
    thumbnailHeight: 200,
    version: 7,
    createdAt: new Date('2026-01-02T03:04:05.006Z'),
    updatedAt: new Date('2026-06-07T08:09:10.999Z'),
  }).where(eq(documents.id, tricky.id))
  const failed = await createDocument(app, owner.id)
  await app.db.update(documents).set({ status: 'failed', error: 'thumbnail: "bad" \\ input\nsecond line', thumbnailKey: 'x', thumbnailWidth: null }).where(eq(documents.id, failed.id))
  const failedNoError = await createDocument(app, owner.id)
  await app.db.update(documents).set({ status: 'failed', error: null }).where(eq(documents.id, failedNoError.id))
  const readyWithError = await createDocument(app, owner.id)
  await app.db.update(documents).set({ error: 'left over from an earlier try' }).where(eq(documents.id, readyWithError.id))
  await share(app, plain.id, reader.id, 'read')
  const ids = [plain.id, tricky.id, failed.id, failedNoError.id, readyWithError.id]

  const reference = async (id: string): Promise<unknown> => JSON.parse(stringify(toDocument((await getDocumentRow(app.db, id))!)))
  const single = async (id: string, headers: Record<string, string>): Promise<string> => {
    const res = await app.inject({ url: `/documents/${id}`, headers })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
    t.strictSame(JSON.parse(res.body), await reference(id), `GET /documents/${id} = the reference`)
    return res.body
  }
  const listed = async (url: string, headers: Record<string, string>): Promise<{ items: unknown[], nextCursor: string | null, raw: string }> => {
    const res = await app.inject({ url, headers })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
    return { ...res.json(), raw: res.body }
  }

  // the owner (UNION branches, prepared statement), an admin (documents:manage), a filtered listing (client-formatted)
  for (const [who, user, url] of [['owner', owner, '/documents?limit=100'], ['admin', admin, '/documents?limit=100'], ['filtered', owner, '/documents?limit=100&status=failed']] as const) {
    const page = await listed(url, user.headers)
    const byId = new Map(page.items.map(i => [(i as { id: string }).id, i]))
    for (const id of ids) {
      if (who === 'filtered' && id !== failed.id && id !== failedNoError.id) continue
      const item = byId.get(id)
      t.ok(item, `${who}: ${id} listed`)
      t.strictSame(item, JSON.parse(await single(id, user.headers)), `${who}: ${id} listed as GET answers it`)
    }
    if (who === 'filtered') t.equal(page.items.filter(i => ids.includes((i as { id: string }).id)).length, 2, 'the filter applies')
  }
  const page = await listed('/documents?limit=100', owner.headers)
  const trickyItem = page.items.find(i => (i as { id: string }).id === tricky.id) as Record<string, unknown>
  t.strictSame(trickyItem.thumbnail, { width: 320, height: 200 })
  t.equal(trickyItem.createdAt, '2026-01-02T03:04:05.006Z')
  t.equal(trickyItem.updatedAt, '2026-06-07T08:09:10.999Z')
  t.equal(typeof trickyItem.size, 'number')
  t.strictSame((trickyItem.metadata as Record<string, unknown>).big, 12345678901234)
  const failedItem = page.items.find(i => (i as { id: string }).id === failed.id) as Record<string, unknown>
  t.equal(failedItem.error, 'thumbnail: "bad" \\ input\nsecond line', 'a failed document lists its error')
  t.equal(failedItem.thumbnail, null)
  t.notOk('error' in (page.items.find(i => (i as { id: string }).id === readyWithError.id) as object), 'only failed documents carry error')
  t.notOk('error' in (page.items.find(i => (i as { id: string }).id === failedNoError.id) as object))
  for (const i of page.items) t.strictSame(Object.keys(i as object).sort(), Object.keys(JSON.parse(await single((i as { id: string }).id, owner.headers))).sort(), 'same members')

  // a read share lists what GET shows it
  const shared = await listed('/documents?limit=100', reader.headers)
  t.strictSame(shared.items.find(i => (i as { id: string }).id === plain.id), JSON.parse(await single(plain.id, reader.headers)))

  // pagination: pages of 2 walk the same items in the same order, each equal to its GET
  const all: unknown[] = []
  let cursor: string | null = null
  do {
    const p: { items: unknown[], nextCursor: string | null } = await listed(`/documents?limit=2${cursor !== null ? `&cursor=${cursor}` : ''}`, owner.headers)
    t.ok(p.items.length <= 2)
    all.push(...p.items)
    cursor = p.nextCursor
  } while (cursor !== null)
  // (other test files add internal documents meanwhile: compare this owner's own)
  const mine = (items: unknown[]): unknown[] => items.filter(i => (i as { ownerId: string }).ownerId === owner.id)
  t.strictSame(mine(all), mine(page.items), 'paged listing = one big page')
  t.equal(mine(all).length, ids.length)

  // the trash: deletedAt filled in, as GET answers it
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${tricky.id}`, headers: owner.headers })).statusCode, 204)
  const trash = await listed('/documents?trashed=true&limit=100', owner.headers)
  const trashed = trash.items.find(i => (i as { id: string }).id === tricky.id) as Record<string, unknown>
  t.match(trashed.deletedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.strictSame(trashed, JSON.parse(await single(tricky.id, owner.headers)), 'trashed item listed as GET answers it')
})
