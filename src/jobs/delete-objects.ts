import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { defineJob } from './types.js'

export const DELETE_OBJECTS_JOB = 'delete-objects'

/**
 * Deletes stored objects whose document row is already gone. Retried with exponential backoff
 * until the storage answers (a missing object counts as deleted).
 */
export default defineJob<{ keys: string[] }>({
  queue: 'cleanup',
  name: DELETE_OBJECTS_JOB,
  options: { attempts: 25, backoff: { type: 'exponential', delay: 5_000 }, removeOnFail: false },
  async process (app, job) {
    for (const key of job.data.keys) await app.storage.delete(key)
    return { deleted: job.data.keys.length }
  },
})

/** Queues the deletion; if the queue is down, deletes inline so nothing is orphaned silently. */
export async function enqueueObjectDeletion (app: FastifyInstance, keys: string[], log: FastifyBaseLogger): Promise<void> {
  if (keys.length === 0) return
  try {
    await app.enqueue(DELETE_OBJECTS_JOB, { keys })
  } catch (err) {
    log.warn({ err, keys }, 'could not queue object deletion; deleting inline')
    for (const key of keys) {
      await app.storage.delete(key).catch((e: unknown) => log.error({ err: e, key }, 'orphaned object: delete it by hand'))
    }
  }
}
