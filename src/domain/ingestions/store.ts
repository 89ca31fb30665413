import { decodeIdCursor, encodeCursor } from '../../lib/pagination.js'
import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db.js'
import { documents, ingestionEvents, ingestions } from '../../../drizzle/schema/index.js'
import { isId } from '../../lib/ids.js'
import { readableCondition } from '../document-access.js'
import { eventValues, FIND_INGESTION_SQL, FIND_INGESTION_WITH_DOCUMENT_SQL, INSERT_EVENT_SQL, toIngestionRow, type NewEvent, type RawIngestionRow } from '../../db/hot-paths.js'
import type { IngestionDto, IngestionEventDto } from '../../schemas/ingestions.js'
import { actorOf, type ActorContext } from './deps.js'

/** Rows, their DTOs (the API's TypeBox schemas), and the reads and event writes every other part uses. */
export type IngestionRow = typeof ingestions.$inferSelect
export type { IngestionDto, IngestionEventDto } from '../../schemas/ingestions.js'

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

export function toDto (row: IngestionRow, events: IngestionEventDto[]): IngestionDto {
  return {
    id: row.id,
    documentId: row.documentId,
    status: row.status,
    operation: row.operation,
    documentVersion: row.documentVersion,
    batchId: row.batchId,
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

// The raw row, its mapper and the hand-written SQL live with the other hot paths (src/db/hot-paths.ts).
export { toIngestionRow, type RawIngestionRow } from '../../db/hot-paths.js'
/** The dispatch job's first read: the ingestion (alias `i`) and its document (`d`) in one round trip (rows nested by alias). */
export const FIND_WITH_DOCUMENT_SQL = FIND_INGESTION_WITH_DOCUMENT_SQL

export async function findIngestion (db: Db, id: string): Promise<IngestionRow | null> {
  if (!isId(id)) return null
  const [rows] = await db.$client.execute(FIND_INGESTION_SQL, [id]) as unknown as [RawIngestionRow[]]
  return rows[0] === undefined ? null : toIngestionRow(rows[0])
}

export async function byIdempotencyKey (db: Db, userId: string, key: string): Promise<IngestionRow | null> {
  const rows = await db.select().from(ingestions).where(and(eq(ingestions.requestedBy, userId), eq(ingestions.idempotencyKey, key))).limit(1)
  return rows[0] ?? null
}

export { eventValues, guardedEventsInsert, INSERT_EVENT_SQL, type NewEvent } from '../../db/hot-paths.js'

/** Appends one event (plain SQL: several per ingestion). */
export async function addEvent (db: Db, ingestionId: string, at: Date, e: NewEvent): Promise<void> {
  await db.$client.execute(INSERT_EVENT_SQL, eventValues(ingestionId, at, e))
}

export { encodeCursor } from '../../lib/pagination.js'
export const decodeCursor = decodeIdCursor

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
