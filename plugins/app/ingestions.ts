import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { createIngestionService, type IngestionService } from '../../src/domain/ingestions/service.js'
import type { ActorContext } from '../../src/domain/ingestions/deps.js'
import type { Principal } from '../../src/domain/auth-state.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every ingestion operation (src/domain/ingestions/), for the routes and the worker's jobs. */
    ingestions: IngestionService
  }
}

/** The actor context of a request: the signed-in user (or `principal`), from where, which request, whether the route's permission is held. */
export function actorContext (request: FastifyRequest, principal: Principal = request.user): ActorContext {
  return { actorId: principal.id, can: principal.can, ip: request.ip, userAgent: request.headers['user-agent'] ?? null, requestId: String(request.id), apiKeyId: principal.keyId ?? null, permitted: request.permitted }
}

export default fp(async (fastify) => {
  const queue = fastify.queues.ingestion
  fastify.decorate('ingestions', createIngestionService({
    db: fastify.db,
    reads: fastify.reads.read,
    published: fastify.reads.afterWrite,
    redis: fastify.redis,
    key: fastify.redisKey,
    queue: {
      enqueue: fastify.enqueue,
      remove: async (jobId) => await queue.remove(jobId),
      getJob: async (jobId) => await queue.getJob(jobId),
    },
    clock: () => new Date(),
    log: fastify.log,
    autoReingest: fastify.config.AUTO_REINGEST,
  }))
}, { name: 'ingestions', dependencies: ['config', 'db', 'redis', 'queue'] })
