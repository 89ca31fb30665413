import { withTimeout as timeLimit } from '../../lib/timeout.js'
import { eq } from 'drizzle-orm'
import { ingestions } from '../../../drizzle/schema/index.js'
import type { IngestionDeps } from './deps.js'
import type { IngestionRow } from './store.js'

export const DISPATCH_JOB = 'ingestion-dispatch'
export const CALLBACK_TIMEOUT_JOB = 'ingestion-callback-timeout'
/** BullMQ job ids: the dispatch job IS the ingestion id (dedupes double enqueues); its callback timer next to it. */
export const dispatchJobId = (id: string): string => id
export const callbackTimeoutJobId = (id: string): string => `${id}.cb`
/** Enqueueing must not hang a request when Redis is down (BullMQ waits for a connection forever). */
export const ENQUEUE_TIMEOUT_MS = 3000

export interface DispatchData { ingestionId: string, requestId: string | null }

type Deps = Pick<IngestionDeps, 'queue' | 'dispatch'>

/** A queue call bounded like every enqueue (ENQUEUE_TIMEOUT_MS): a Redis outage is a quick 503, not a hang. */
export const withTimeout = async <T>(p: Promise<T>, ms = ENQUEUE_TIMEOUT_MS): Promise<T> => await timeLimit(p, ms, 'enqueue timed out')

/** Options of every dispatch job: the retry budget and exponential backoff with jitter (from config). */
export function dispatchOptions (deps: Pick<IngestionDeps, 'dispatch'>) {
  return {
    attempts: deps.dispatch.attempts,
    backoff: { type: 'exponential', delay: deps.dispatch.backoffMs, jitter: 0.5 },
  }
}

/** Adds the dispatch job (id = ingestion id, so a double enqueue is a no-op). */
export async function addDispatchJob (deps: Deps, row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> {
  if (!deps.queue.ready()) throw new Error('the queue connection is not ready')
  const data: DispatchData = { ingestionId: row.id, requestId: row.requestId ?? null }
  await withTimeout(deps.queue.add(DISPATCH_JOB, data, { ...dispatchOptions(deps), jobId: dispatchJobId(row.id) }))
}

/** Adds the dispatch job of an existing row and stamps enqueued_at (retries, the recovery sweep). */
export async function enqueueDispatch (deps: Deps & Pick<IngestionDeps, 'db' | 'clock'>, row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> {
  await addDispatchJob(deps, row)
  await deps.db.update(ingestions).set({ enqueuedAt: deps.clock() }).where(eq(ingestions.id, row.id))
}

/** Best effort: removes the waiting/delayed dispatch job and callback timer (locked active jobs stay). */
export async function removeJobs (deps: Pick<IngestionDeps, 'queue'>, id: string): Promise<void> {
  await Promise.allSettled([withTimeout(deps.queue.remove(dispatchJobId(id))), withTimeout(deps.queue.remove(callbackTimeoutJobId(id)))])
}
