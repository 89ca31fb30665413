import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm'
import type { Static } from '@sinclair/typebox'
import type { Db, DbOrTx, SqlValue, Statement } from '../../db.js'
import { documents, ingestionEvents, ingestions } from '../../../drizzle/schema/index.js'
import { isId } from '../../lib/ids.js'
import { badRequest } from '../../lib/errors.js'
import { DOCUMENT_COLUMNS, readableCondition } from '../document-access.js'
import type { Ingestion, IngestionEvent } from '../../schemas/ingestions.js'
import { actorOf, type ActorContext } from './deps.js'

/** Rows, their DTOs (the API's TypeBox schemas), and the reads and event writes every other part uses. */
export type IngestionRow = typeof ingestions.$inferSelect
export type IngestionDto = Static<typeof Ingestion>
export type IngestionEventDto = Static<typeof IngestionEvent>

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

export function toDto (row: IngestionRow, events: IngestionEventDto[]): IngestionDto {
  return {
    id: row.id,
    documentId: row.documentId,
    status: row.status,
    pipeline: row.pipeline,
    options: row.options ?? {},
    attempts: row.attempts,
    lastError: row.lastError ?? null,
    result: row.result ?? null,
    requestedBy: row.requestedBy,
    createdAt: row.createdAt.toISOString(),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    events,
  }
}

export async function eventsOf (db: DbOrTx, ids: string[]): Promise<Map<string, IngestionEventDto[]>> {
  const out = new Map<string, IngestionEventDto[]>(ids.map(id => [id, []]))
  if (ids.length === 0) return out
  const rows = await db.select().from(ingestionEvents).where(inArray(ingestionEvents.ingestionId, ids)).orderBy(ingestionEvents.id)
  for (const r of rows) out.get(r.ingestionId)?.push({ at: r.at.toISOString(), type: r.type, message: r.message })
  return out
}

export async function dtosOf (db: DbOrTx, rows: IngestionRow[]): Promise<IngestionDto[]> {
  const events = await eventsOf(db, rows.map(r => r.id))
  return rows.map(r => toDto(r, events.get(r.id) ?? []))
}

/** An ingestions row as mysql2 returns it (JSON columns parsed by mysql2, as drizzle gets them). */
export interface RawIngestionRow {
  id: string
  document_id: string
  status: string
  pipeline: string
  options: Record<string, unknown>
  attempts: number
  last_error: string | null
  result: unknown
  requested_by: string
  idempotency_key: string | null
  request_id: string | null
  created_at: Date
  updated_at: Date
  started_at: Date | null
  finished_at: Date | null
  enqueued_at: Date | null
}

const INGESTION_COLUMNS = ['id', 'document_id', 'status', 'pipeline', 'options', 'attempts', 'last_error', 'result', 'requested_by',
  'idempotency_key', 'request_id', 'created_at', 'updated_at', 'started_at', 'finished_at', 'enqueued_at']
// Read several times per dispatch job, by callbacks and SSE: plain SQL, like the document load.
const FIND_INGESTION_SQL = `SELECT ${INGESTION_COLUMNS.join(', ')} FROM ingestions WHERE id = ? LIMIT 1`
/** The dispatch job's first read: the ingestion (alias `i`) and its document (`d`) in one round trip (rows nested by alias). */
export const FIND_WITH_DOCUMENT_SQL = `SELECT ${INGESTION_COLUMNS.map(c => `i.${c}`).join(', ')}, ${DOCUMENT_COLUMNS} ` +
  'FROM ingestions i LEFT JOIN documents d ON d.id = i.document_id WHERE i.id = ? LIMIT 1'

export async function findIngestion (db: Db, id: string): Promise<IngestionRow | null> {
  if (!isId(id)) return null
  const [rows] = await db.$client.execute(FIND_INGESTION_SQL, [id]) as unknown as [RawIngestionRow[]]
  return rows[0] === undefined ? null : toIngestionRow(rows[0])
}

export function toIngestionRow (r: RawIngestionRow): IngestionRow {
  return {
    id: r.id,
    documentId: r.document_id,
    status: r.status,
    pipeline: r.pipeline,
    options: r.options,
    attempts: r.attempts,
    lastError: r.last_error,
    result: r.result,
    requestedBy: r.requested_by,
    idempotencyKey: r.idempotency_key,
    requestId: r.request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    enqueuedAt: r.enqueued_at,
  }
}

export async function byIdempotencyKey (db: Db, userId: string, key: string): Promise<IngestionRow | null> {
  const rows = await db.select().from(ingestions).where(and(eq(ingestions.requestedBy, userId), eq(ingestions.idempotencyKey, key))).limit(1)
  return rows[0] ?? null
}

export interface NewEvent { type: string, message: string, data?: Record<string, unknown> }

/** One event's values, in the column order of `ingestion_events` (ingestion_id, at, type, message, data). */
export const eventValues = (ingestionId: string, at: Date, e: NewEvent): SqlValue[] =>
  [ingestionId, at, e.type, e.message.slice(0, 2000), e.data !== undefined ? JSON.stringify(e.data) : null]

export const INSERT_EVENT_SQL = 'INSERT INTO ingestion_events (ingestion_id, at, type, message, data) VALUES (?, ?, ?, ?, ?)'

/**
 * The INSERT of `events` as a statement for `sqlAtomic`, written only when the session variable
 * `@quire_changed` is 1 (set from the preceding UPDATE's row count in the same batch).
 */
export function guardedEventsInsert (ingestionId: string, events: NewEvent[], at: Date): Statement {
  const select = 'SELECT ?, ?, ?, ?, ? FROM DUAL WHERE @quire_changed = 1'
  return [`INSERT INTO ingestion_events (ingestion_id, at, type, message, data) ${events.map(() => select).join(' UNION ALL ')}`,
    events.flatMap(e => eventValues(ingestionId, at, e))]
}

/** Appends one event (plain SQL: several per ingestion). */
export async function addEvent (db: Db, ingestionId: string, at: Date, e: NewEvent): Promise<void> {
  await db.$client.execute(INSERT_EVENT_SQL, eventValues(ingestionId, at, e))
}

/** Opaque cursor: the last id of the page. */
export const encodeCursor = (id: string): string => Buffer.from(JSON.stringify({ i: id })).toString('base64url')
export function decodeCursor (cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { i?: unknown }
    if (typeof v.i === 'string' && isId(v.i)) return v.i
  } catch { /* fall through */ }
  throw badRequest('The cursor is not one this API gave out; pass nextCursor from the previous page unchanged', 'invalid_cursor')
}

export interface ListQuery { documentId?: string, status?: string, limit: number, cursor?: string }

/** Ingestions of documents that are there for the actor (the rule of loadIngestionFor, in SQL), newest first. */
export async function listIngestions (db: Db, ctx: Pick<ActorContext, 'actorId' | 'can'>, q: ListQuery): Promise<{ items: IngestionDto[], nextCursor: string | null }> {
  const where: Array<SQL | undefined> = []
  if (q.cursor !== undefined) where.push(lt(ingestions.id, decodeCursor(q.cursor)))
  if (q.documentId !== undefined) where.push(eq(ingestions.documentId, q.documentId))
  if (q.status !== undefined) where.push(eq(ingestions.status, q.status))
  let rows: IngestionRow[]
  if (ctx.can('ingestions:manage')) {
    rows = await db.select().from(ingestions).where(and(...where)).orderBy(desc(ingestions.id)).limit(q.limit + 1)
  } else {
    where.push(readableCondition(actorOf(ctx)))
    const joined = await db.select({ i: ingestions }).from(ingestions).innerJoin(documents, eq(documents.id, ingestions.documentId))
      .where(and(...where)).orderBy(desc(ingestions.id)).limit(q.limit + 1)
    rows = joined.map(r => r.i)
  }
  const more = rows.length > q.limit
  const page = rows.slice(0, q.limit)
  return { items: await dtosOf(db, page), nextCursor: more ? encodeCursor(page[page.length - 1]!.id) : null }
}
