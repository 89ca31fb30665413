import fp from 'fastify-plugin'
import { createRedis, evictionWarning, maxmemoryPolicy, waitReady, type RedisClient } from '../../src/redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient
    /** Prefix for every key Quire writes, so several deployments (or test runs) can share a Redis. */
    redisKey: (...parts: string[]) => string
    /** Redis' maxmemory-policy (null: unreadable), read at most every 30 s; see `evictionWarning`. */
    redisPolicy: () => Promise<string | null>
  }
}

export default fp(async (fastify) => {
  // Auto-pipelining: commands issued in the same tick (auth checks and rate-limit counters of
  // concurrent requests, a transition's announcements) leave in one socket write; on a loaded
  // host the write syscalls were a visible share of the CPU. Replies keep their order, but a plain
  // command waits for the end of the tick while MULTI goes at once: writes that must not be
  // overtaken use NX (see publishSessionActive). The command timeout keeps a stalled Redis a
  // quick failure even for commands queued behind a pipeline that waits for its replies.
  const redis = createRedis(fastify.config, { enableAutoPipelining: true, commandTimeout: 2000 })
  let lastError = ''
  redis.on('error', (err: Error) => {
    // ioredis emits on every reconnect attempt: log each distinct failure once.
    if (err.message !== lastError) fastify.log.warn({ err }, 'redis connection error')
    lastError = err.message
  })
  redis.on('ready', () => { lastError = '' })
  fastify.decorate<RedisClient>('redis', redis)
  const prefix = fastify.config.REDIS_PREFIX
  fastify.decorate('redisKey', (...parts: string[]) => `${prefix}:${parts.join(':')}`)
  let policy: { value: string | null, at: number } | null = null
  fastify.decorate('redisPolicy', async () => {
    if (policy !== null && Date.now() - policy.at < 30_000) return policy.value
    const value = await maxmemoryPolicy(redis).catch(() => null)
    policy = { value, at: Date.now() }
    return value
  })
  if (!await waitReady(redis)) fastify.log.error('redis is not reachable at boot; continuing, readiness will report it')
  fastify.addHook('onReady', async () => {
    const warning = evictionWarning(await fastify.redisPolicy())
    if (warning !== null) fastify.log.warn(warning)
  })
  fastify.addHook('onClose', async () => { redis.disconnect() })
}, { name: 'redis', dependencies: ['config'] })
