import fp from 'fastify-plugin'
import { Queue } from 'bullmq'
import { bullPrefix, createRedis } from '../../src/redis.js'
import { QUEUE_NAMES, type QueueName } from '../../src/jobs/types.js'
import { createEnqueue, type Enqueue } from '../../src/jobs/enqueue.js'

declare module 'fastify' {
  interface FastifyInstance {
    queues: Record<QueueName, Queue>
    /** Enqueues a job of the catalogue (src/jobs/catalogue.ts), typed by its name; never loads its processor. */
    enqueue: Enqueue
  }
}

export default fp(async (fastify) => {
  // Producers share one fail-fast connection: a Redis outage becomes a 503, not a hung request.
  const connection = createRedis(fastify.config, { maxRetriesPerRequest: 1 })
  connection.on('error', () => { /* logged by the main redis plugin */ })
  const prefix = bullPrefix(fastify.config)
  const queues = Object.fromEntries(QUEUE_NAMES.map(name => {
    const q = new Queue(name, { connection, prefix })
    q.on('error', (err) => fastify.log.warn({ err, queue: name }, 'queue error'))
    return [name, q]
  })) as Record<QueueName, Queue>
  fastify.decorate('queues', queues)
  fastify.decorate('enqueue', createEnqueue(queues, fastify.config))

  fastify.addHook('onClose', async () => {
    await Promise.allSettled(Object.values(queues).map(async q => await q.close()))
    connection.disconnect()
  })
}, { name: 'queue', dependencies: ['config', 'redis'] })
