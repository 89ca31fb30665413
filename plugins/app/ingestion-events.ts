import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createRedis, waitReady } from '../../src/redis.js'
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
  let sub: Redis | null = null
  let subscribed: Promise<void> | null = null

  async function ensure (): Promise<void> {
    if (subscribed !== null) return await subscribed
    subscribed = (async () => {
      const conn = createRedis(fastify.config.REDIS_URL, { enableOfflineQueue: true, maxRetriesPerRequest: null })
      conn.on('error', (err) => fastify.log.debug({ err }, 'ingestion events subscriber error'))
      conn.on('message', (ch: string, raw: string) => { if (ch === channel) hub.dispatch(raw) })
      sub = conn
      if (!await waitReady(conn)) throw new Error('redis subscriber not ready')
      await conn.subscribe(channel)
    })()
    try {
      await subscribed
    } catch (err) {
      subscribed = null
      sub?.disconnect()
      sub = null
      throw err
    }
  }

  fastify.decorate('ingestionEvents', {
    subscribe: async (id: string, fn: (msg: StatusMessage) => void) => {
      await ensure()
      return hub.add(id, fn)
    },
  })

  fastify.addHook('onClose', async () => { sub?.disconnect() })
}, { name: 'ingestion-events', dependencies: ['config', 'redis'] })
