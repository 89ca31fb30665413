import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { AppError } from '../../src/lib/errors.js'

/**
 * Redis-backed, so the limit holds across every API process. It runs as the first global
 * onRequest hook (before authentication), so requests with bad tokens and requests for unknown
 * routes count and carry the x-ratelimit-* headers too; routes opt out with `rateLimit: false`.
 */
export default fp(async (fastify) => {
  await fastify.register(rateLimit, {
    global: false,
    max: fastify.config.RATE_LIMIT_MAX,
    timeWindow: fastify.config.RATE_LIMIT_WINDOW,
    redis: fastify.redis,
    nameSpace: `${fastify.config.REDIS_PREFIX}:rl:`,
    // Redis down: let the request through rather than fail everything (readiness reports it).
    skipOnError: true,
    allowList: (request) => request.url === '/health' || request.url.startsWith('/health/'),
    errorResponseBuilder: (_request, context) =>
      new AppError(429, 'rate_limited', `Rate limit exceeded, retry in ${context.after}`),
  })
  const limit = fastify.rateLimit()
  // The auth plugin (registered after this one) starts a request's session lookup here, so that
  // it shares the limiter's Redis round trip; its result is only looked at once the limit passed.
  let beginAuthentication: ((request: FastifyRequest) => void) | null = null
  fastify.addHook('onReady', async () => {
    if (fastify.hasDecorator('beginAuthentication')) beginAuthentication = fastify.beginAuthentication
  })
  fastify.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.rateLimit === false) return
    beginAuthentication?.(request)
    await limit.call(fastify, request, reply)
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis'] })
