import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { sharedReadiness } from '../../src/domain/health.js'
import { evictionWarning } from '../../src/redis.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('fail')])
const Ready = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({
    db: Check,
    redis: Check,
    storage: Check,
    replica: Type.Optional(Type.Union(['ok', 'lagging', 'down', 'unsupported'].map(s => Type.Literal(s)), { description: 'only with DATABASE_REPLICA_URL; never makes the process unready: while not ok, the list reads go to the primary' })),
  }),
  warnings: Type.Optional(Type.Array(Type.String(), { description: 'present when something needs an operator without making the process unready, e.g. a Redis maxmemory-policy other than noeviction' })),
})

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  const ready = sharedReadiness({
    db: async () => await fastify.dbPool.query('SELECT 1'),
    redis: async () => await fastify.redis.ping(),
    storage: async () => await fastify.storage.check(),
    warnings: async () => [evictionWarning(await fastify.redisPolicy())],
    replica: async () => await fastify.reads.check(),
    log: fastify.log,
  }, fastify.config.HEALTH_READY_CACHE_MS)
  fastify.get('/', {
    config: { public: true, rateLimit: false },
    schema: { tags: ['operations'], summary: 'Liveness: the process answers', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    config: { public: true, rateLimit: false },
    schema: { tags: ['operations'], summary: 'Readiness: db, redis and storage', description: `Probes that arrive while a check runs, or within HEALTH_READY_CACHE_MS (${fastify.config.HEALTH_READY_CACHE_MS} ms here) after it, get its result.`, security: [], response: { 200: Ready, 503: Ready } },
  }, async (_request, reply) => {
    const r = await ready()
    return await reply.code(r.ok ? 200 : 503).send({ status: r.ok ? 'ok' : 'unavailable', checks: r.checks, ...(r.warnings.length > 0 ? { warnings: r.warnings } : {}) })
  })
}

export default health
