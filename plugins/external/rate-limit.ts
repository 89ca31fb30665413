import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { AppError } from '../../src/lib/errors.js'

/** Redis-backed, so the limit holds across every API process. */
export default fp(async (fastify) => {
  await fastify.register(rateLimit, {
    global: true,
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
}, { name: 'rate-limit', dependencies: ['config', 'redis'] })
