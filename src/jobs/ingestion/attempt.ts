import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { sqlBatch } from '../../db.js'
import { ingestions } from '../../../drizzle/schema/index.js'
import { isId } from '../../lib/ids.js'
import { toDocumentRow, type DocumentRow, type RawDocumentRow } from '../../domain/document-access.js'
import { FIND_WITH_DOCUMENT_SQL, toIngestionRow, type IngestionRow, type RawIngestionRow } from '../../domain/ingestions/store.js'
import { CALLBACK_TIMEOUT_JOB, callbackTimeoutJobId } from '../../domain/ingestions/jobs.js'
import { JOB_RETENTION } from '../types.js'

/** The worker's side of an attempt: only the dispatch job and the recovery sweep run these. */

// Starts an attempt: queued|running -> running, attempts + 1, started_at kept from the first one,
// only while the document is live.
const OPEN_ATTEMPT_SQL = "UPDATE ingestions SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, ?), updated_at = ? " +
  "WHERE id = ? AND status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM documents d WHERE d.id = ingestions.document_id AND d.deleted_at IS NULL)"

/**
 * The dispatch job's opening, in one round trip: the ingestion and its document as they were,
 * and the attempt begun (running, attempts + 1) if the row was queued or running and its
 * document is live. `started` is null when nothing was begun: the row is final, gone or its
 * document deleted (all visible in `row`/`doc`), or it changed between the two statements (a
 * cancel, a delete of the document: read once more, so `row`/`doc` show it).
 */
export async function openAttempt (app: FastifyInstance, id: string, retried = false): Promise<{ row: IngestionRow, doc: DocumentRow | null, started: IngestionRow | null } | null> {
  if (!isId(id)) return null
  const now = new Date()
  const [rows, res] = await sqlBatch(app.db, [[FIND_WITH_DOCUMENT_SQL, [id]], [OPEN_ATTEMPT_SQL, [now, now, id]]], { nestTables: true }) as
    [Array<{ i: RawIngestionRow, d: RawDocumentRow }>, { affectedRows: number }]
  const r = rows[0]
  if (r === undefined) return null
  const row = toIngestionRow(r.i)
  const doc = r.d.id === null ? null : toDocumentRow(r.d)
  const dispatchable = (row.status === 'queued' || row.status === 'running') && doc !== null && doc.deletedAt === null
  // Read as startable but not started: the row or its document changed between the two
  // statements (a cancel, a delete). Once more, so the caller sees what stopped it.
  if (res.affectedRows !== 1 && dispatchable && !retried) return await openAttempt(app, id, true)
  if (res.affectedRows !== 1 || (row.status !== 'queued' && row.status !== 'running')) return { row, doc, started: null }
  if (row.status === 'queued') await app.ingestions.announce({ id, status: 'running', type: 'running', message: 'dispatching to the ingestion backend', at: now.toISOString() })
  return { row, doc, started: { ...row, status: 'running', attempts: row.attempts + 1, startedAt: row.startedAt ?? now, updatedAt: now } }
}

/** Remembers the last transient error while a retry waits (status stays running). */
export async function setLastError (app: FastifyInstance, id: string, message: string): Promise<void> {
  await app.db.update(ingestions).set({ lastError: message.slice(0, 4000), updatedAt: new Date() }).where(and(eq(ingestions.id, id), eq(ingestions.status, 'running')))
}

/** (Re)arms the timer that fails a 202-accepted ingestion whose callback never comes. */
export async function armCallbackTimeout (app: FastifyInstance, id: string, delay: number): Promise<void> {
  const q = app.queues.ingestion
  await q.remove(callbackTimeoutJobId(id))
  await q.add(CALLBACK_TIMEOUT_JOB, { ingestionId: id }, { ...JOB_RETENTION, jobId: callbackTimeoutJobId(id), delay: Math.max(0, delay), attempts: 5, backoff: { type: 'exponential', delay: 1000 } })
}
