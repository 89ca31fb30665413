import { OPEN_INGESTION_STATUSES } from '../../constants.js'
import { and, eq, inArray, isNull, lt } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { documents, ingestionBatches, ingestions } from '../../../drizzle/schema/index.js'
import { callbackTimeoutJobId, dispatchJobId } from '../../domain/ingestions/jobs.js'
import { armCallbackTimeout } from './attempt.js'
import { LIVE_STATES } from '../requeue.js'

/**
 * The recovery sweep. Rows untouched for `graceMs`:
 * - queued with no live job (Redis lost it, or the process died between the insert and the
 *   enqueue): enqueued again (the job id is the ingestion id, so this never doubles a job);
 * - running with no live dispatch job: failed if BullMQ gave up on the job (e.g. it stalled too
 *   often); otherwise it is waiting for a callback, so its callback timer is re-armed (or it
 *   fails at once when the callback window is over).
 * `opts.ids` limits the sweep to those ingestions (tests share one database between files).
 */
export async function recoverIngestions (app: FastifyInstance, graceMs: number, opts: { ids?: readonly string[] } = {}): Promise<{ requeued: number, failed: number, rearmed: number }> {
  const out = { requeued: 0, failed: 0, rearmed: 0 }
  if (opts.ids?.length === 0) return out
  const svc = app.ingestions
  const cutoff = new Date(Date.now() - graceMs)
  const rows = await app.db.select().from(ingestions)
    .where(and(
      inArray(ingestions.status, [...OPEN_INGESTION_STATUSES]),
      lt(ingestions.updatedAt, cutoff),
      opts.ids !== undefined ? inArray(ingestions.id, [...opts.ids]) : undefined
    )).orderBy(ingestions.updatedAt).limit(500)
  const q = app.queues.ingestion
  for (const row of rows) {
    const log = app.log.child({ ingestionId: row.id, requestId: row.requestId })
    const job = await q.getJob(dispatchJobId(row.id))
    const state = job === undefined ? 'missing' : await job.getState()
    if (LIVE_STATES.has(state)) continue
    if (row.status === 'queued') {
      if (job !== undefined) await job.remove().catch(() => undefined)
      await svc.enqueueDispatch(row)
      await svc.note(row, 'queued', 'recovered', `re-enqueued by the recovery sweep (job was ${state})`)
      log.warn({ state }, 'recovery: re-enqueued a queued ingestion')
      out.requeued++
      continue
    }
    if (state === 'failed') {
      const reason = job?.failedReason ?? 'the dispatch job failed'
      if (await svc.transition(row.id, { from: ['running'], to: 'failed', set: { lastError: reason, finishedAt: new Date() }, event: { type: 'failed', message: `recovery: dispatch job failed: ${reason}` } })) out.failed++
      continue
    }
    const timer = await q.getJob(callbackTimeoutJobId(row.id))
    if (timer !== undefined && LIVE_STATES.has(await timer.getState())) continue
    const remaining = row.updatedAt.getTime() + app.config.INGESTION_CALLBACK_TIMEOUT_MS - Date.now()
    if (remaining <= 0) {
      const msg = 'no dispatch job and no callback within the callback timeout'
      if (await svc.transition(row.id, { from: ['running'], to: 'failed', set: { lastError: msg, finishedAt: new Date() }, event: { type: 'failed', message: `recovery: ${msg}` } })) out.failed++
    } else {
      await armCallbackTimeout(app, row.id, remaining)
      out.rearmed++
    }
  }
  // Bulk re-runs still expanding but untouched (their job lost): queued again (job id per batch: no doubles).
  if (opts.ids === undefined) {
    const stuck = await app.db.select({ id: ingestionBatches.id }).from(ingestionBatches)
      .where(and(eq(ingestionBatches.status, 'expanding'), lt(ingestionBatches.updatedAt, cutoff))).limit(100)
    for (const b of stuck) await app.enqueue('ingestion-batch', { batchId: b.id })
  }
  return out
}

/**
 * Documents whose index fell behind and that nothing will bring back: `stale` (a newer version than
 * the one indexed) with no open ingestion, while AUTO_REINGEST is on, untouched for `graceMs`. The
 * upsert a new version queues (src/domain/ingestions/follow.ts documentChanged) is created after its
 * version committed, by a hook that logs its failures (a deadlock, a lost connection) and goes on:
 * such a document is given its upsert here. Not while the version is being scanned or is infected.
 * `opts.ids` limits the sweep to those documents (tests share one database between files).
 */
export async function reindexStale (app: FastifyInstance, graceMs: number, opts: { ids?: readonly string[] } = {}): Promise<number> {
  if (!app.config.AUTO_REINGEST || opts.ids?.length === 0) return 0
  const rows = await app.db.select({ id: documents.id }).from(documents)
    .where(and(
      eq(documents.indexState, 'stale'),
      isNull(documents.deletedAt),
      inArray(documents.status, ['ready', 'processing']),
      lt(documents.updatedAt, new Date(Date.now() - graceMs)),
      opts.ids !== undefined ? inArray(documents.id, [...opts.ids]) : undefined
    )).limit(100)
  let created = 0
  for (const { id } of rows) {
    if (await app.ingestions.documentChanged({ actorId: null, requestId: null }, id) !== null) created++
  }
  return created
}
