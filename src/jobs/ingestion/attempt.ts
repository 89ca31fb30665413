import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { sqlDecide } from '../../db.js'
import { ingestions } from '../../../drizzle/schema/index.js'
import { isId } from '../../lib/ids.js'
import { toDocumentRow, type DocumentRow, type RawDocumentRow } from '../../domain/document-access.js'
import { FIND_WITH_DOCUMENT_SQL, INSERT_EVENT_SQL, eventValues, toIngestionRow, type IngestionRow, type RawIngestionRow } from '../../domain/ingestions/store.js'
import { callbackTimeoutJobId } from '../../domain/ingestions/jobs.js'
import { refreshIndexQuietly } from '../../domain/ingestions/index-state.js'

/** The worker's side of an attempt: only the dispatch job and the recovery sweep run these. */

/** What the dispatch job may do now: send (`started`), wait for the document's gate (`busy`), or nothing. */
export type Opening =
  | { kind: 'started', row: IngestionRow, doc: DocumentRow | null, started: IngestionRow }
  | { kind: 'busy', row: IngestionRow, doc: DocumentRow | null, blocker: string }
  | { kind: 'superseded', row: IngestionRow, doc: DocumentRow | null, by: string }
  | { kind: 'idle', row: IngestionRow, doc: DocumentRow | null }

// Every open ingestion of the document and every newer one, locked: two dispatch jobs of one
// document decide one after the other.
const SIBLINGS_SQL = "SELECT id, status, operation, document_version FROM ingestions WHERE document_id = ? AND (status IN ('queued', 'running') OR id > ?) ORDER BY id FOR UPDATE"
interface Sibling { id: string, status: string, operation: string, document_version: number | null }
type Decided = { kind: 'idle' } | { kind: 'busy', other: string } | { kind: 'superseded', other: string } | { kind: 'started', status: string }

// Starts an attempt: queued|running -> running, attempts + 1, started_at kept from the first one.
const OPEN_SQL = "UPDATE ingestions SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status IN ('queued', 'running')"
const SUPERSEDE_SQL = "UPDATE ingestions SET status = 'superseded', finished_at = ?, updated_at = ? WHERE id = ? AND status = 'queued'"

/**
 * Per document, in creation order, one at a time: an ingestion waits while another of its
 * document is running or an older one is still queued. An upsert still queued when a newer upsert
 * (of a higher version) or a delete of the same document exists is superseded instead of sent.
 */
function decide (row: IngestionRow, siblings: Sibling[]): { kind: 'busy' | 'superseded', other: string } | null {
  const others = siblings.filter(s => s.id !== row.id)
  if (row.status === 'queued' && row.operation === 'upsert') {
    const newer = others.find(s => s.id > row.id && ['queued', 'running', 'succeeded'].includes(s.status) &&
      (s.operation === 'delete' || (s.document_version ?? 0) > (row.documentVersion ?? 0)))
    if (newer !== undefined) return { kind: 'superseded', other: newer.id }
  }
  const blocker = others.find(s => s.status === 'running' || (s.status === 'queued' && s.id < row.id))
  return blocker === undefined ? null : { kind: 'busy', other: blocker.id }
}

/**
 * The dispatch job's opening: the ingestion and its document as they are, then, under the lock of
 * the document's open ingestions, the decision (busy, superseded, or the attempt begun: running,
 * attempts + 1). An upsert only starts while its document is live; a delete needs no document
 * row (a purged document's delete is still delivered).
 */
export async function openAttempt (app: FastifyInstance, id: string): Promise<Opening | null> {
  if (!isId(id)) return null
  const [rows] = await app.db.$client.query({ sql: FIND_WITH_DOCUMENT_SQL, nestTables: true }, [id]) as unknown as [Array<{ i: RawIngestionRow, d: RawDocumentRow }>]
  const r = rows[0]
  if (r === undefined) return null
  const row = toIngestionRow(r.i)
  const doc = r.d.id === null ? null : toDocumentRow(r.d)
  const open = row.status === 'queued' || row.status === 'running'
  if (!open || (row.operation !== 'delete' && (doc === null || doc.deletedAt !== null))) return { kind: 'idle', row, doc }
  const now = new Date()
  // Two round trips: the lock and read of the siblings, then the decision's writes with the COMMIT.
  const outcome = await sqlDecide<Decided>(app.db, [[SIBLINGS_SQL, [row.documentId, row.id]]], ([read]) => {
    const siblings = read as Sibling[]
    const self = siblings.find(s => s.id === row.id)
    if (self === undefined || (self.status !== 'queued' && self.status !== 'running')) return { then: [], value: { kind: 'idle' } }
    const current = { ...row, status: self.status }
    const d = decide(current, siblings)
    if (d?.kind === 'busy') return { then: [], value: { kind: 'busy', other: d.other } }
    if (d?.kind === 'superseded') {
      return {
        then: [
          [SUPERSEDE_SQL, [now, now, row.id]],
          [INSERT_EVENT_SQL, eventValues(row.id, now, { type: 'superseded', message: `superseded by ingestion ${d.other} of the same document; not sent`, data: { by: d.other } })],
        ],
        value: { kind: 'superseded', other: d.other },
      }
    }
    // The row is locked (FOR UPDATE above) and open: the UPDATE changes it.
    return { then: [[OPEN_SQL, [now, now, row.id]]], value: { kind: 'started', status: self.status } }
  })
  if (outcome.kind === 'idle') return { kind: 'idle', row: (await app.ingestions.find(id)) ?? row, doc }
  if (outcome.kind === 'busy') return { kind: 'busy', row, doc, blocker: outcome.other }
  if (outcome.kind === 'superseded') {
    await app.ingestions.announce({ id, status: 'superseded', type: 'superseded', message: `superseded by ingestion ${outcome.other} of the same document; not sent`, at: now.toISOString() })
    await refreshIndexQuietly({ db: app.db, log: app.log }, row.documentId)
    return { kind: 'superseded', row, doc, by: outcome.other }
  }
  if (outcome.status === 'queued') await app.ingestions.announce({ id, status: 'running', type: 'running', message: 'dispatching to the ingestion backend', at: now.toISOString() })
  return { kind: 'started', row, doc, started: { ...row, status: 'running', attempts: row.attempts + 1, startedAt: row.startedAt ?? now, updatedAt: now } }
}

/** Remembers the last transient error while a retry waits (status stays running). */
export async function setLastError (app: FastifyInstance, id: string, message: string): Promise<void> {
  await app.db.update(ingestions).set({ lastError: message.slice(0, 4000), updatedAt: new Date() }).where(and(eq(ingestions.id, id), eq(ingestions.status, 'running')))
}

/** (Re)arms the timer that fails a 202-accepted ingestion whose callback never comes (options: the catalogue's). */
export async function armCallbackTimeout (app: FastifyInstance, id: string, delay: number): Promise<void> {
  await app.queues.ingestion.remove(callbackTimeoutJobId(id))
  await app.enqueue('ingestion-callback-timeout', { ingestionId: id }, { delay: Math.max(0, delay) })
}
