import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { checkSession, type Principal } from '../../src/domain/auth-state.js'
import { authDeps, type AccessTokenPayload } from '../../src/domain/sessions.js'
import type { Permission } from '../../src/domain/permissions.js'
import { forbidden, unauthorized } from '../../src/lib/errors.js'

/** What a route declares in `config`: `public: true`, or the permission it needs. */
export interface AuthRouteConfig {
  public?: boolean
  permission?: Permission
}

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
  if (h === undefined || h === '') throw unauthorized('Missing Authorization header')
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
    let payload: AccessTokenPayload
    try {
      payload = fastify.jwt.verify<AccessTokenPayload>(token)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' || code === 'FAST_JWT_EXPIRED') throw unauthorized('Access token expired', 'token_expired')
      throw unauthorized('Invalid access token')
    }
    if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') throw unauthorized('Invalid access token')
    const res = await checkSession(deps, payload.sid, payload.sub)
    if (!res.ok) throw res.reason === 'disabled' ? unauthorized('Account disabled') : unauthorized('Session revoked', 'token_revoked')
    return res.principal
  }

  fastify.decorate('authenticate', authenticate)

  fastify.addHook('onRequest', async (request) => {
    if (request.is404) return
    const config = request.routeOptions.config
    if (config.public === true) return
    const url = request.routeOptions.url ?? ''
    if (PUBLIC_PREFIXES.some(p => url === p || url.startsWith(p + '/'))) return
    request.user = await authenticate(request)
    if (config.permission !== undefined && !request.user.can(config.permission)) throw forbidden()
  })
}, { name: 'auth', dependencies: ['config', 'db', 'redis', 'jwt'] })

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<Principal>
  }
}
