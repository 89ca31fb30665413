import fp from 'fastify-plugin'
import { lazySubscriber } from '../../src/redis.js'
import { eventsChannel, StatusHub, type StatusMessage } from '../../src/domain/ingestion-events.js'

declare module 'fastify' {
  interface FastifyInstance {
    ingestionEvents: {
      /** Calls `fn` for every status change of ingestion `id`; resolves once subscribed; returns the unsubscribe. */
      subscribe: (id: string, fn: (msg: StatusMessage) => void) => Promise<() => void>
    }
  }
}

/**
 * One dedicated subscriber connection per process, opened lazily on the first SSE client (the
 * worker never opens it). ioredis re-subscribes by itself after a reconnect.
 */
export default fp(async (fastify) => {
  const hub = new StatusHub()
  const channel = eventsChannel(fastify.redisKey)

  const subscriber = lazySubscriber(fastify.config, channel, (raw) => { hub.dispatch(raw) }, (err) => fastify.log.debug({ err }, 'ingestion events subscriber error'))

  fastify.decorate('ingestionEvents', {
    subscribe: async (id: string, fn: (msg: StatusMessage) => void) => {
      await subscriber.ready()
      return hub.add(id, fn)
    },
  })

  fastify.addHook('onClose', async () => { subscriber.close() })
}, { name: 'ingestion-events', dependencies: ['config', 'redis'] })
