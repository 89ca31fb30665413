import { withTimeout as timeLimit } from '../../lib/timeout.js'
import { eq } from 'drizzle-orm'
import { ingestions } from '../../../drizzle/schema/index.js'
import { jobIdOf } from '../../jobs/catalogue.js'
import type { IngestionDeps } from './deps.js'
import type { IngestionRow } from './store.js'

/**
 * The ingestion jobs as the domain uses them. Their queue, payload, options and job ids are the
 * catalogue's (src/jobs/catalogue.ts `ingestion-dispatch`, `ingestion-callback-timeout`); nothing
 * here defines them again.
 */
export const dispatchJobId = (id: string): string => jobIdOf('ingestion-dispatch', { ingestionId: id, requestId: null }) ?? id
export const callbackTimeoutJobId = (id: string): string => jobIdOf('ingestion-callback-timeout', { ingestionId: id }) ?? `${id}.cb`
/** Enqueueing must not hang a request when Redis is down (BullMQ waits for a connection forever). */
export const ENQUEUE_TIMEOUT_MS = 3000

type Deps = Pick<IngestionDeps, 'queue'>

/** A queue call bounded like every enqueue (ENQUEUE_TIMEOUT_MS): a Redis outage is a quick 503, not a hang. */
export const withTimeout = async <T>(p: Promise<T>, ms = ENQUEUE_TIMEOUT_MS): Promise<T> => await timeLimit(p, ms, 'enqueue timed out')

/** Adds the dispatch job (id = ingestion id, so a double enqueue is a no-op); fails fast while Redis is down. */
export async function addDispatchJob (deps: Deps, row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> {
  await deps.queue.enqueue('ingestion-dispatch', { ingestionId: row.id, requestId: row.requestId?.slice(0, 200) ?? null }, { timeoutMs: ENQUEUE_TIMEOUT_MS })
}

/** Adds the dispatch job of an existing row and stamps enqueued_at (retries, the recovery sweep). */
export async function enqueueDispatch (deps: Deps & Pick<IngestionDeps, 'db' | 'clock'>, row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> {
  await addDispatchJob(deps, row)
  await deps.db.update(ingestions).set({ enqueuedAt: deps.clock() }).where(eq(ingestions.id, row.id))
}

/** Best effort: removes the waiting/delayed dispatch job and callback timer (locked active jobs stay). */
export async function removeJobs (deps: Deps, id: string): Promise<void> {
  await Promise.allSettled([withTimeout(deps.queue.remove(dispatchJobId(id))), withTimeout(deps.queue.remove(callbackTimeoutJobId(id)))])
}
