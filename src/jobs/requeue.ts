import type { Queue } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import { catalogue, jobIdOf, type JobName, type Payload } from './catalogue.js'

/** States in which a job will still run (or runs now): a sweep leaves such a job alone. */
export const LIVE_STATES = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children'])

/**
 * Runs `add` unless job `jobId` of `queue` is live; true when it added. A finished or failed job of
 * that id is removed first: BullMQ would take the add for a duplicate of it and add nothing.
 */
export async function requeueUnlessLive (queue: Queue, jobId: string, add: () => Promise<unknown>): Promise<boolean> {
  const existing = await queue.getJob(jobId)
  if (existing !== undefined && LIVE_STATES.has(await existing.getState())) return false
  await existing?.remove().catch(() => undefined)
  await add()
  return true
}

/** requeueUnlessLive for each payload of catalogued job `name` (its job id convention); how many were queued. */
export async function requeueEach<N extends JobName> (app: Pick<FastifyInstance, 'queues' | 'enqueue'>, name: N, payloads: Array<Payload<N>>): Promise<number> {
  const queue = app.queues[catalogue[name].queue]
  let requeued = 0
  for (const data of payloads) {
    const jobId = jobIdOf(name, data)
    if (jobId === undefined) throw new Error(`job ${name} has no id convention: a sweep could double it`)
    if (await requeueUnlessLive(queue, jobId, async () => await app.enqueue(name, data))) requeued++
  }
  return requeued
}
