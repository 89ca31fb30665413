import type { Queue } from 'bullmq'

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
