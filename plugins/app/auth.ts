import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { checkSession, type Principal } from '../../src/domain/auth-state.js'
import { authDeps, type AccessTokenPayload } from '../../src/domain/sessions.js'
import { describeGate, gateAllows, type PermissionGate } from '../../src/domain/permissions.js'
import { forbidden, missingPermission, unauthorized } from '../../src/lib/errors.js'
import { looksLikeKey } from '../../src/lib/api-key-format.js'
import { isId } from '../../src/lib/ids.js'

/** What a route declares in `config`: `public: true`, or the permissions it needs (a list: any one of them; `{ all }`: each). */
export interface AuthRouteConfig {
  public?: boolean
  permission?: PermissionGate
  /**
   * For a route on one object: a missing `permission` is not answered here but left in
   * `request.permitted` (false) for the object's lookup, which answers 404 first when the user
   * cannot see the object (it must not reveal that it exists), 403 otherwise.
   */
  permissionAfterLookup?: boolean
  /** Needs a user session: an API key is refused with 403 session_required (creating keys, passwords, sessions). */
  sessionOnly?: boolean
}

const allows = (user: Principal, permission: PermissionGate): boolean => gateAllows(permission, p => user.can(p))

declare module 'fastify' {
  interface FastifyContextConfig extends AuthRouteConfig {}
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenPayload
    user: Principal
  }
}

/** Routes registered by plugins we do not own (Swagger UI). */
const PUBLIC_PREFIXES = ['/docs']

function bearer (request: FastifyRequest): string {
  const h = request.headers.authorization
  if (h === undefined || h === '') throw unauthorized('Missing Authorization header: send "Authorization: Bearer <accessToken or API key>" (POST /auth/login gives a token)')
  const m = /^Bearer ([A-Za-z0-9_\-.=]+)$/i.exec(h)
  if (m?.[1] === undefined) throw unauthorized('Authorization header must be "Bearer <token>"')
  return m[1]
}

/**
 * The one authentication and permission hook. Every route is authenticated unless its config
 * says `public: true`; `config.permission` is checked here, never inside handlers.
 */
export default fp(async (fastify) => {
  const deps = authDeps(fastify)

  async function authenticate (request: FastifyRequest): Promise<Principal> {
    const token = bearer(request)
    if (looksLikeKey(token)) return await fastify.apiKeyAuth.authenticate(token, request)
    let payload: AccessTokenPayload
    try {
      payload = fastify.jwt.verify<AccessTokenPayload>(token)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' || code === 'FAST_JWT_EXPIRED') throw unauthorized('Access token expired; get a new one with POST /auth/refresh', 'token_expired')
      throw unauthorized('Invalid access token; log in again with POST /auth/login')
    }
    // The verifier requires the claims (plugins/external/jwt.ts); their types are checked here.
    const { sub, sid, exp } = payload as Partial<AccessTokenPayload> & { exp?: unknown }
    if (typeof exp !== 'number' || typeof sub !== 'string' || typeof sid !== 'string' || !isId(sub) || !isId(sid)) throw unauthorized('Invalid access token; log in again with POST /auth/login')
    const res = await checkSession(deps, payload.sid, payload.sub)
    if (!res.ok) throw res.reason === 'disabled' ? unauthorized('This account is disabled; ask an admin to enable it') : unauthorized('This session was ended (logout, password change or an admin); log in again', 'token_revoked')
    return res.principal
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorateRequest('permitted', true)

  function needsAuthentication (request: FastifyRequest): boolean {
    if (request.is404 || request.routeOptions.config.public === true) return false
    const url = request.routeOptions.url ?? ''
    return !PUBLIC_PREFIXES.some(p => url === p || url.startsWith(p + '/'))
  }

  const started = new WeakMap<FastifyRequest, Promise<Principal>>()

  // Called by the rate limiter's hook just before it awaits its Redis counter: the session lookup
  // leaves in the same auto-pipelined write, one round trip for both. Nothing of the outcome is
  // used, and no error surfaces, before the hook below (so a 429 still comes before a 401).
  fastify.decorate('beginAuthentication', (request: FastifyRequest): void => {
    if (!needsAuthentication(request)) return
    const pending = authenticate(request)
    pending.catch(() => { /* surfaces in the hook below */ })
    started.set(request, pending)
  })

  fastify.addHook('onRequest', async (request) => {
    if (!needsAuthentication(request)) return
    request.user = await (started.get(request) ?? authenticate(request))
    const { permission, permissionAfterLookup, sessionOnly } = request.routeOptions.config
    if (sessionOnly === true && request.user.keyId !== undefined) {
      throw forbidden('This needs a user session: log in (POST /auth/login) and use the access token, not an API key', 'session_required')
    }
    if (permission === undefined || allows(request.user, permission)) return
    if (permissionAfterLookup !== true) throw missingPermission(describeGate(permission))
    request.permitted = false
  })
}, { name: 'auth', dependencies: ['config', 'db', 'redis', 'jwt', 'api-keys'] })

declare module 'fastify' {
  interface FastifyRequest {
    /** False when the route's `permission` is missing and its config defers that answer (`permissionAfterLookup`). */
    permitted: boolean
  }
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<Principal>
    /** Starts the request's authentication early (see the auth plugin); the auth hook awaits it. */
    beginAuthentication: (request: FastifyRequest) => void
  }
}
