import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { lookupUserByEmail } from '../../src/domain/users.js'
import { AppError } from '../../src/lib/errors.js'
import { authErrors, errors } from '../../src/schemas/common.js'
import { Email, UserRef } from '../../src/schemas/auth.js'

/**
 * Sharing takes another user's id, and only admins may list users: anyone who may share looks one
 * up by exact email. No listing, no partial match, disabled accounts are not found, and each caller
 * has USER_LOOKUP_MAX lookups per USER_LOOKUP_WINDOW_SECONDS (hits and misses alike), so the route
 * cannot be used to enumerate accounts.
 */
const lookupRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { USER_LOOKUP_MAX: max, USER_LOOKUP_WINDOW_SECONDS: windowSeconds } = fastify.config
  // @fastify/rate-limit's Redis counter, keyed by the caller (authenticated by now), not the IP.
  const limit = fastify.createRateLimit({ max, timeWindow: windowSeconds * 1000, keyGenerator: (request) => `users-lookup:${request.user.id}` })

  fastify.get('/lookup', {
    config: { permission: 'documents:share' },
    schema: {
      tags: ['users'],
      summary: 'Find a user to share with, by exact email (documents:share)',
      description: `The email is compared trimmed, lower-cased and NFC-normalised, as at login. Unknown and disabled accounts are 404. Each caller may look up ${max} emails per ${windowSeconds} s; beyond that 429 \`rate_limited\` with Retry-After.`,
      querystring: Type.Object({ email: Email }, { additionalProperties: false }),
      response: { 200: UserRef, ...authErrors, ...errors(404) },
    },
  }, async (request) => {
    const counted = await limit(request)
    if (!counted.isAllowed && counted.isExceeded) {
      const s = String(Math.max(1, counted.ttlInSeconds))
      throw new AppError(429, 'rate_limited', `Too many user lookups, retry in ${s} seconds`, undefined, {
        'retry-after': s, 'x-ratelimit-limit': String(max), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': s,
      })
    }
    const user = await lookupUserByEmail(fastify.db, request.query.email)
    if (user === undefined) throw new AppError(404, 'not_found', 'No active user has this email address; check it for typos (the whole address is needed)')
    return user
  })
}

export default lookupRoutes
