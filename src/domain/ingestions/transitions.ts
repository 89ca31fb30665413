import { sqlAtomic, type Statement } from '../../db.js'
import { eventsChannel, publishStatus, type StatusMessage } from '../ingestion-events.js'
import type { IngestionDeps } from './deps.js'
import { addEvent, guardedEventsInsert, type IngestionRow, type NewEvent } from './store.js'
import { canMove, isFinal, type IngestionStatus } from './state-machine.js'
import { ingestionEventStatements } from '../webhooks/outbox.js'
import { indexRefreshStatements, refreshIndexQuietly } from './index-state.js'

type Deps = Pick<IngestionDeps, 'db' | 'redis' | 'key' | 'log' | 'clock' | 'published'>
/** The final statuses, each announced by a webhook event written in the transition's transaction. */
type Final = 'succeeded' | 'failed' | 'cancelled'
const FINAL: ReadonlySet<IngestionStatus> = new Set<Final>(['succeeded', 'failed', 'cancelled'])

export interface Transition {
  from: readonly IngestionStatus[]
  to: IngestionStatus
  set?: Partial<Pick<IngestionRow, 'lastError' | 'result' | 'startedAt' | 'finishedAt' | 'enqueuedAt'>> & { attemptsPlusOne?: boolean }
  event: NewEvent
  /** Events recorded just before `event`, in the same transaction (e.g. the attempt that led to it). */
  before?: NewEvent[]
  /**
   * The ingestion's document, when the caller knows it (the dispatch job): a final status then
   * moves the document's index fields in the transition's own transaction, the document row
   * locked before the ingestion's (the order of every other writer of both: a purge, a trigger).
   */
  documentId?: string
}

/**
 * A guarded status change: `UPDATE ... WHERE status IN (from)`, its event in the same transaction,
 * then a pub/sub message. Returns false (and writes nothing) when the row was not in `from`,
 * which is how a late callback after a cancel, or a second worker, is ignored. Every edge must be
 * one of the state machine's (a programming error otherwise).
 */
export async function transition (deps: Deps, id: string, t: Transition): Promise<boolean> {
  for (const f of t.from) if (!canMove(f, t.to)) throw new Error(`illegal ingestion transition ${f} -> ${t.to}`)
  const now = deps.clock()
  const { attemptsPlusOne, ...set } = t.set ?? {}
  // Plain SQL (the dispatch job makes two transitions per ingestion): SET what is given, like drizzle's .set()
  const sets = ['status = ?', 'updated_at = ?']
  const params: Array<string | Date | null> = [t.to, now]
  if (set.lastError !== undefined) { sets.push('last_error = ?'); params.push(set.lastError) }
  if (set.result !== undefined) { sets.push('result = ?'); params.push(set.result === null ? null : JSON.stringify(set.result)) }
  if (set.startedAt !== undefined) { sets.push('started_at = ?'); params.push(set.startedAt) }
  if (set.finishedAt !== undefined) { sets.push('finished_at = ?'); params.push(set.finishedAt) }
  if (set.enqueuedAt !== undefined) { sets.push('enqueued_at = ?'); params.push(set.enqueuedAt) }
  if (attemptsPlusOne === true) sets.push('attempts = attempts + 1')
  const query = `UPDATE ingestions SET ${sets.join(', ')} WHERE id = ? AND status IN (${t.from.map(() => '?').join(', ')})`
  const fold = isFinal(t.to) && t.documentId !== undefined
  const head: Statement[] = fold ? [['SELECT id FROM documents WHERE id = ? FOR UPDATE', [t.documentId!]]] : []
  const body: Statement[] = [
    [query, [...params, id, ...t.from]],
    ['SET @quire_changed = ROW_COUNT()', []],
    guardedEventsInsert(id, [...(t.before ?? []), t.event], now),
    ...(FINAL.has(t.to) ? ingestionEventStatements(id, `ingestion.${t.to as Final}`, { status: t.to, ...set, finishedAt: set.finishedAt?.toISOString() }, now) : []),
    ['SELECT document_id FROM ingestions WHERE id = ? AND @quire_changed = 1', [id]],
  ]
  const tail = fold ? indexRefreshStatements(['SET @quire_index_doc = IF(@quire_changed = 1, ?, NULL)', [t.documentId!]]) : []
  // One round trip: the UPDATE, then its events only if it changed the row.
  const results = await sqlAtomic(deps.db, [...head, ...body, ...tail])
  if ((results[head.length] as { affectedRows: number }).affectedRows !== 1) return false
  // A final verdict moves the document's index fields (index-state.ts): folded in above, or one
  // round trip of its own that locks the document row first, as every writer of the row does (in
  // the transition's transaction after its ingestion row, it deadlocked with a purge).
  const documentId = (results[head.length + body.length - 1] as Array<{ document_id: string }>)[0]?.document_id
  if (isFinal(t.to) && !fold && documentId !== undefined) await refreshIndexQuietly(deps, documentId)
  // One connection writes the commands in call order: subscribers get them in this order.
  const at = now.toISOString()
  await publishPosition(deps)
  await Promise.all([
    ...(t.before ?? []).map(async e => await send(deps, { id, status: t.from[0] ?? t.to, type: e.type, message: e.message, at })),
    send(deps, { id, status: t.to, type: t.event.type, message: t.event.message, at }),
  ])
  return true
}

/**
 * With a read replica: the primary's position is published before a status message leaves, so a
 * list that a client sends on the message (on any process) has the change (src/db/replica.ts).
 */
async function publishPosition (deps: Pick<Deps, 'published' | 'log'>): Promise<void> {
  try {
    await deps.published?.()
  } catch (err) {
    deps.log.error({ err }, 'could not publish the primary\'s position for the read replica')
  }
}

async function send (deps: Pick<Deps, 'redis' | 'key' | 'log'>, msg: StatusMessage): Promise<void> {
  try {
    await publishStatus(deps.redis, eventsChannel(deps.key), msg)
  } catch (err) {
    deps.log.warn({ err, ingestionId: msg.id }, 'could not publish ingestion status')
  }
}

/** Publishes a status message (after the position of what it announces); a Redis outage only delays SSE clients, it never fails the change. */
export async function announce (deps: Pick<Deps, 'redis' | 'key' | 'log' | 'published'>, msg: StatusMessage): Promise<void> {
  await publishPosition(deps)
  await send(deps, msg)
}

/** Records an event that is not a status change (an attempt, a scheduled retry) and tells SSE clients. */
export async function note (deps: Deps, row: Pick<IngestionRow, 'id'>, status: string, type: string, message: string, data?: Record<string, unknown>): Promise<void> {
  const now = deps.clock()
  await addEvent(deps.db, row.id, now, { type, message, data })
  await announce(deps, { id: row.id, status, type, message, at: now.toISOString() })
}
