import type { FastifyBaseLogger, FastifyInstance } from 'fastify'

/** Queues the deletion; if the queue is down, deletes inline so nothing is orphaned silently. */
export async function enqueueObjectDeletion (app: FastifyInstance, keys: string[], log: FastifyBaseLogger): Promise<void> {
  if (keys.length === 0) return
  try {
    await app.enqueue('delete-objects', { keys })
  } catch (err) {
    log.warn({ err, keys }, 'could not queue object deletion; deleting inline')
    for (const key of keys) {
      await app.storage.delete(key).catch((e: unknown) => log.error({ err: e, key }, 'orphaned object: delete it by hand'))
    }
  }
}
