import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { keyAuthenticator, throttle, type KeyFailure } from '../../src/domain/api-keys/auth.js'
import { apiKeyService, type ApiKeyService } from '../../src/domain/api-keys/service.js'
import type { Principal } from '../../src/domain/auth-state.js'
import { contextOf } from '../../src/domain/audit.js'
import { unauthorized } from '../../src/lib/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** API keys: create, list, get, revoke (src/domain/api-keys/service.ts). */
    apiKeys: ApiKeyService
    apiKeyAuth: {
      /** The principal of a `qk_...` bearer token, or the 401 that says why not. */
      authenticate: (token: string, request: FastifyRequest) => Promise<Principal>
      /** Whether a key principal (a stream's) may still act; its fresh principal when it may. */
      recheck: (principal: Principal) => Promise<Principal | null>
    }
  }
}

const REFUSALS: Record<KeyFailure, () => Error> = {
  invalid: () => unauthorized('Unknown or malformed API key; check the key (qk_<id>_<secret>) or make a new one', 'api_key_invalid'),
  revoked: () => unauthorized('This API key was revoked; make a new one (POST /api-keys)', 'api_key_revoked'),
  expired: () => unauthorized('This API key has expired; make a new one (POST /api-keys)', 'api_key_expired'),
  owner_disabled: () => unauthorized('The account this API key belongs to is disabled or deleted; ask an admin', 'api_key_owner_disabled'),
}

/** API keys (issue 21): the hot-path authenticator the auth hook calls for `qk_` tokens, and the service the routes use. */
export default fp(async (fastify) => {
  const deps = { db: fastify.db, redis: fastify.redis, key: fastify.redisKey, clock: () => new Date(), log: fastify.log }
  const checker = keyAuthenticator(deps)
  // An expired key in a loop must not write an audit row per request.
  const auditExpired = throttle(60_000)

  async function authenticate (token: string, request: FastifyRequest): Promise<Principal> {
    const res = await checker.check(token, request.ip)
    if (res.ok) return res.principal
    if (res.reason === 'expired' && res.key !== undefined && auditExpired(res.key.id, Date.now())) {
      const ctx = { ...contextOf({ id: request.id, ip: request.ip, headers: request.headers }), apiKeyId: res.key.id }
      await fastify.recordAudit(ctx, { action: 'api_key.expired_use', actorId: res.key.userId, subject: `api_key:${res.key.id}` })
    }
    throw REFUSALS[res.reason]()
  }

  async function recheck (principal: Principal): Promise<Principal | null> {
    if (principal.keyId === undefined) return null
    const res = await checker.recheck(principal.keyId)
    return res.ok ? res.principal : null
  }

  fastify.decorate('apiKeyAuth', { authenticate, recheck })
  fastify.decorate('apiKeys', apiKeyService({ ...deps, maxTtlDays: fastify.config.API_KEY_MAX_TTL_DAYS, audit: fastify.recordAudit }))
}, { name: 'api-keys', dependencies: ['config', 'db', 'redis', 'audit'] })
