import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { AppError } from '../../src/lib/errors.js'
import { parseKey } from '../../src/lib/api-key-format.js'
import { sha256Hex } from '../../src/lib/tokens.js'

/**
 * The per-key bucket of a request made with an API key (issue 21), or null. Named after the
 * public id and a digest of the whole key, so a request with a wrong secret counts in a bucket of
 * its own and cannot spend the real key's budget; the digest does not reveal the secret.
 */
function keyBucket (request: FastifyRequest): string {
  const token = (request.headers.authorization ?? '').slice(7)
  const parts = parseKey(token)
  return parts === null ? 'key:malformed' : `key:${parts.publicId}:${sha256Hex(token).slice(0, 16)}`
}

const KEY_BEARER = /^bearer qk_/i

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
  // Per API key, besides per IP: its counter leaves in the same round trip as the IP's.
  const keyLimit = fastify.createRateLimit({
    max: fastify.config.API_KEY_RATE_LIMIT_MAX,
    timeWindow: fastify.config.API_KEY_RATE_LIMIT_WINDOW,
    keyGenerator: keyBucket,
  })
  // The auth plugin (registered after this one) starts a request's session lookup here, so that
  // it shares the limiter's Redis round trip; its result is only looked at once the limit passed.
  let beginAuthentication: ((request: FastifyRequest) => void) | null = null
  fastify.addHook('onReady', async () => {
    if (fastify.hasDecorator('beginAuthentication')) beginAuthentication = fastify.beginAuthentication
  })
  fastify.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.rateLimit === false) return
    beginAuthentication?.(request)
    // A list that may read the replica: the position it must see leaves in the same round trip.
    if (request.routeOptions.config?.replicaRead === true) request.readHint = fastify.reads.hint()
    const auth = request.headers.authorization
    const perKey = auth !== undefined && KEY_BEARER.test(auth) ? keyLimit(request) : null
    perKey?.catch(() => { /* answered below */ })
    await limit.call(fastify, request, reply)
    const res = await perKey
    if (res === null || res === undefined || res.isAllowed) return
    // The key's budget is the one a machine client plans with: its headers replace the IP's.
    reply.header('x-ratelimit-limit', res.max).header('x-ratelimit-remaining', res.remaining).header('x-ratelimit-reset', res.ttlInSeconds)
    if (res.isExceeded) {
      reply.header('retry-after', res.ttlInSeconds)
      throw new AppError(429, 'rate_limited', `Rate limit of this API key exceeded (API_KEY_RATE_LIMIT_MAX), retry in ${res.ttlInSeconds} s`)
    }
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis', 'db'] })
