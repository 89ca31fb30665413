import { withTimeout as timeLimit } from '../lib/timeout.js'
import type { JobsOptions, Queue } from 'bullmq'
import type { Config } from '../config.js'
import { catalogue, isJobName, jobIdOf, optionsOf, type JobName, type Payload } from './catalogue.js'
import { payloadError } from './payloads.js'
import { JOB_RETENTION, type QueueName } from './types.js'

export interface EnqueueOptions extends JobsOptions {
  /**
   * Fail fast: refuse at once when the queue's Redis connection is not ready, and give up after
   * this many ms (BullMQ otherwise waits for a connection as long as ioredis retries).
   */
  timeoutMs?: number
}

/** Adds a catalogued job: JOB_RETENTION, then the job's default options and job id, then `opts`. Resolves to the job id. */
export type Enqueue = <N extends JobName>(name: N, data: Payload<N>, opts?: EnqueueOptions) => Promise<string>

/** The typed `enqueue` over these queues. A payload that does not match its schema is refused (a bug, not bad input). */
export function createEnqueue (queues: Record<QueueName, Queue>, config: Config): Enqueue {
  return async (name, data, opts = {}) => {
    if (!isJobName(name as string)) throw new Error(`unknown job ${String(name)}`)
    const spec = catalogue[name]
    const invalid = payloadError(name, data)
    if (invalid !== null) throw new Error(`invalid payload for job ${name}: ${invalid}`)
    const { timeoutMs, ...jobOpts } = opts
    const queue = queues[spec.queue]
    const jobId = jobIdOf(name, data)
    const jobOptions = { ...JOB_RETENTION, ...optionsOf(name, config), ...(jobId !== undefined ? { jobId } : {}), ...jobOpts }
    if (timeoutMs === undefined) return String((await queue.add(name, data, jobOptions)).id)
    // Checked before adding: a job parked in ioredis' offline queue could still be added after we gave up.
    const conn = queue.opts.connection as { status?: string }
    if (conn.status !== undefined && conn.status !== 'ready') throw new Error(`queue connection is ${conn.status}`)
    const add = queue.add(name, data, jobOptions)
    return String((await timeLimit(add, timeoutMs, 'enqueue timed out')).id)
  }
}

/** Many jobs of one catalogued kind for `queue.addBulk` (one round trip), with the same options and ids as `enqueue`. */
export function bulkJobs<N extends JobName> (name: N, data: Array<Payload<N>>, config: Config): Array<{ name: N, data: Payload<N>, opts: JobsOptions }> {
  return data.map((d) => {
    const invalid = payloadError(name, d)
    if (invalid !== null) throw new Error(`invalid payload for job ${name}: ${invalid}`)
    const jobId = jobIdOf(name, d)
    return { name, data: d, opts: { ...JOB_RETENTION, ...optionsOf(name, config), ...(jobId !== undefined ? { jobId } : {}) } }
  })
}
