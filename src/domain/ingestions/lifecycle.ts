import { eq } from 'drizzle-orm'
import { ingestions } from '../../../drizzle/schema/index.js'
import { AppError, conflict, forbidden, notFound, unavailable } from '../../lib/errors.js'
import { isReadable, loadDocumentFor } from '../document-access.js'
import { actorOf, type ActorContext, type IngestionDeps } from './deps.js'
import { callbackTimeoutJobId, dispatchJobId, enqueueDispatch, removeJobs, withTimeout } from './jobs.js'
import { recordAudit } from './audit.js'
import { claimCallback } from '../callback-replay.js'
import { MAX_SKEW_SECONDS } from '../ingestion-signing.js'
import { dtosOf, findIngestion, type IngestionDto, type IngestionRow } from './store.js'
import { transition } from './transitions.js'
import { refreshIndexQuietly } from './index-state.js'
import { ACTIONS, callbackOutcome, canRetry } from './state-machine.js'

/** A user's cancel and retry, and the backend's callback: the changes made from outside the worker. */

type Deps = IngestionDeps

/**
 * An ingestion the actor may see: ingestions:manage sees all; anyone else exactly when its document
 * is there for them (the document rule, trash included: `isReadable`, as `readableCondition` in
 * lists). `canWrite`: may cancel or retry it, as far as the object goes (the permissions,
 * ingestions:trigger or ingestions:manage, are the route's: `ctx.permitted`).
 */
export async function loadIngestionFor (deps: Pick<Deps, 'db'>, ctx: Pick<ActorContext, 'actorId' | 'can'>, id: string): Promise<{ row: IngestionRow, canWrite: boolean } | null> {
  const row = await findIngestion(deps.db, id)
  if (row === null) return null
  const manage = ctx.can('ingestions:manage')
  const access = await loadDocumentFor(deps.db, actorOf(ctx), row.documentId, 'any')
  const visible = access !== null && isReadable(access, access.doc.deletedAt !== null)
  if (!visible && !manage) return null
  // Without ingestions:manage, only your own ingestions ("cancel/retry anyone's" is manage's),
  // and only while you may still write the document.
  return { row, canWrite: manage || (row.requestedBy === ctx.actorId && visible && access.canWrite) }
}

async function loadForWrite (deps: Deps, ctx: ActorContext, id: string): Promise<IngestionRow> {
  const found = await loadIngestionFor(deps, ctx, id)
  if (found === null) throw notFound('Ingestion')
  if (ctx.permitted === false || !found.canWrite) throw forbidden('Cancelling or retrying this ingestion requires the ingestions:manage permission, or having requested it yourself (with ingestions:trigger and write access to its document)')
  return found.row
}

const current = async (deps: Deps, row: IngestionRow): Promise<IngestionDto> => (await dtosOf(deps.db, [(await findIngestion(deps.db, row.id)) ?? row]))[0]!

export async function cancelIngestion (deps: Deps, ctx: ActorContext, id: string): Promise<IngestionDto> {
  const row = await loadForWrite(deps, ctx, id)
  const ok = await transition(deps, row.id, {
    from: ACTIONS.cancel.from,
    to: 'cancelled',
    set: { finishedAt: deps.clock() },
    event: { type: 'cancelled', message: 'cancelled by a user', data: { by: ctx.actorId } },
  })
  if (!ok) {
    const now = await findIngestion(deps.db, row.id)
    throw conflict(`Only queued or running ingestions can be cancelled (status ${now?.status ?? row.status})`, 'invalid_transition')
  }
  // A waiting or delayed job goes; an active one finds the row cancelled and stops retrying.
  await removeJobs(deps, row.id)
  const item = await current(deps, row)
  await recordAudit(deps, ctx, { action: 'ingestion.cancel', subject: `ingestion:${item.id}`, payload: { documentId: item.documentId } })
  return item
}

export async function retryIngestion (deps: Deps, ctx: ActorContext, id: string): Promise<IngestionDto> {
  const row = await loadForWrite(deps, ctx, id)
  if (!canRetry(row.status)) throw conflict(`Only failed or cancelled ingestions can be retried (status ${row.status})`, 'invalid_transition')
  const from = row.status as 'failed' | 'cancelled'
  try {
    // The previous cycle's job keeps the id until removed; an active one (cancelled mid-request) cannot be.
    const job = await withTimeout(deps.queue.getJob(dispatchJobId(row.id)))
    if (job !== undefined && await job.isActive()) throw conflict('The previous attempt is still in flight; retry in a moment', 'ingestion_busy')
    if (job !== undefined) await job.remove()
    await deps.queue.remove(callbackTimeoutJobId(row.id))
  } catch (err) {
    if (err instanceof AppError) throw err
    throw unavailable('The job queue is unavailable, retry later')
  }
  const ok = await transition(deps, row.id, {
    from: [from],
    to: 'queued',
    set: { lastError: null, result: null, finishedAt: null, startedAt: null },
    event: { type: 'retried', message: `retry requested (was ${from})`, data: { by: ctx.actorId } },
  })
  if (!ok) throw conflict('The ingestion changed meanwhile; reload it', 'invalid_transition')
  await deps.db.update(ingestions).set({ requestId: ctx.requestId.slice(0, 128) }).where(eq(ingestions.id, row.id))
  // The 202 answers the ingestion as queued, read before a worker can pick it up.
  const queued = await current(deps, row)
  try {
    await enqueueDispatch(deps, { id: row.id, requestId: ctx.requestId })
  } catch (err) {
    deps.log.error({ err, ingestionId: row.id }, 'could not enqueue ingestion retry')
    await transition(deps, row.id, { from: ['queued'], to: from, set: { lastError: row.lastError, result: row.result, startedAt: row.startedAt, finishedAt: row.finishedAt }, event: { type: 'retry_aborted', message: 'the job queue was unavailable; nothing was retried' } })
    throw unavailable('The job queue is unavailable, retry later')
  }
  await refreshIndexQuietly(deps, queued.documentId)
  await recordAudit(deps, ctx, { action: 'ingestion.retry', subject: `ingestion:${queued.id}`, payload: { documentId: queued.documentId } })
  return queued
}

export interface CallbackBody { status: 'succeeded' | 'failed', result?: unknown, error?: string }

/**
 * Applies a verified backend callback (the state machine's `callbackOutcome`): queued/running ->
 * succeeded/failed; the same final status again, or any callback for a cancelled ingestion, is a
 * no-op (200, changed: false); succeeded <-> failed is a 409.
 */
export async function applyCallback (deps: Deps, id: string, body: CallbackBody): Promise<{ id: string, status: string, changed: boolean }> {
  for (let i = 0; i < 2; i++) {
    const row = await findIngestion(deps.db, id)
    if (row === null) throw notFound('Ingestion')
    const outcome = callbackOutcome(row.status, body.status)
    if (outcome === 'noop') return { id, status: row.status, changed: false }
    if (outcome === 'conflict') throw conflict(`Ingestion is already ${row.status}; a callback cannot make it ${body.status}`, 'invalid_transition')
    const ok = body.status === 'succeeded'
      ? await transition(deps, id, { from: ACTIONS.finish.from, to: 'succeeded', set: { result: body.result ?? null, lastError: null, finishedAt: deps.clock() }, event: { type: 'succeeded', message: 'callback: succeeded' } })
      : await transition(deps, id, { from: ACTIONS.finish.from, to: 'failed', set: { lastError: (body.error ?? 'the backend reported a failure').slice(0, 4000), result: body.result ?? null, finishedAt: deps.clock() }, event: { type: 'failed', message: `callback: failed: ${body.error ?? 'no reason given'}` } })
    if (ok) {
      await Promise.allSettled([withTimeout(deps.queue.remove(callbackTimeoutJobId(id)))])
      return { id, status: body.status, changed: true }
    }
    // The row moved under us (a cancel, a worker): decide again on its new status.
  }
  const row = await findIngestion(deps.db, id)
  return { id, status: row?.status ?? body.status, changed: false }
}

/** Replayed signatures are remembered a bit longer than the timestamp window they could be valid in. */
const REPLAY_TTL_SECONDS = MAX_SKEW_SECONDS * 2 + 60

/**
 * A callback whose signature the route verified, applied at most once per signature: claimed in
 * Redis first (409 `callback_replayed` if it was applied before, `callback_in_progress` while the
 * same request is being applied), remembered once applied or refused (4xx), forgotten only if
 * applying it failed (5xx: the same signed request can be delivered again).
 */
export async function receiveCallback (deps: Deps, id: string, signature: string, body: CallbackBody): Promise<{ id: string, status: string, changed: boolean }> {
  const row = await findIngestion(deps.db, id)
  if (row === null) throw notFound('Ingestion')
  // Keyed on the row's canonical id: another spelling of the same id is the same callback.
  const claim = await claimCallback(deps.redis, deps.key('ingestion-callback', row.id.toLowerCase(), signature.replace(/^sha256=/, '')), REPLAY_TTL_SECONDS)
  if (claim.state !== 'claimed') {
    throw claim.state === 'replayed'
      ? conflict('This callback was already received (replay refused)', 'callback_replayed')
      : conflict('This callback is being applied right now; retry it later', 'callback_in_progress')
  }
  let out: Awaited<ReturnType<typeof applyCallback>>
  try {
    out = await applyCallback(deps, row.id, body)
  } catch (err) {
    // A refusal (4xx: 409 invalid_transition, ...) is an answer: remember it, so the same signed
    // request cannot be replayed later into another attempt cycle (after a retry) and apply there.
    // Only a failure to apply (5xx, MySQL down) forgets it, so the backend can deliver it again.
    const refused = err instanceof AppError && err.statusCode < 500
    const settle = refused ? claim.commit() : claim.release()
    await settle.catch((e: unknown) => deps.log.warn({ err: e, ingestionId: row.id }, 'could not settle a callback claim; it expires by itself'))
    throw err
  }
  await claim.commit().catch((e: unknown) => deps.log.warn({ err: e, ingestionId: row.id }, 'could not record an applied callback for replay protection'))
  return out
}
