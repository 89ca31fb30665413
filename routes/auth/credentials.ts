import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { login, register, rotateRefreshToken } from '../../src/domain/auth.js'
import { toMe } from '../../src/domain/users.js'
import { AppError, unauthorized } from '../../src/lib/errors.js'
import { errors } from '../../src/schemas/common.js'
import { Email, LoginResponse, Me, Name, NewPassword, TokenPairResponse, trimEmail } from '../../src/schemas/auth.js'
import { PASSWORD_MAX } from '../../src/domain/passwords.js'

/** The routes that need no access token: register, login, refresh. */
const credentials: FastifyPluginAsyncTypebox = async (fastify) => {
  const meta = (request: { ip: string, headers: Record<string, unknown> }) =>
    ({ ip: request.ip, userAgent: typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'] : null })

  fastify.post('/register', {
    config: { public: true },
    preValidation: trimEmail,
    schema: {
      tags: ['auth'],
      summary: 'Create an account (role viewer)',
      description: 'A taken email is 409 email_taken. Those count with failed logins towards the login throttle, per IP and per account (429 with Retry-After).',
      security: [],
      body: Type.Object({ email: Email, password: NewPassword, name: Type.Optional(Name) }, { additionalProperties: false }),
      response: { 201: Type.Object({ user: Me }), ...errors(400, 403, 409, 429, 500, 503) },
    },
  }, async (request, reply) => {
    let user
    try {
      user = await register(fastify, request.body, meta(request))
    } catch (err) {
      if (err instanceof AppError && err.code === 'email_taken') {
        await fastify.audit(request, { action: 'auth.register_failed', actorId: null, subject: null, payload: { email: request.body.email.trim().toLowerCase().slice(0, 254), reason: 'email_taken' } })
      }
      throw err
    }
    await fastify.audit(request, { action: 'auth.register', actorId: user.id, subject: `user:${user.id}`, payload: { email: user.email } })
    return await reply.code(201).send({ user: toMe(user) })
  })

  fastify.post('/login', {
    config: { public: true },
    preValidation: trimEmail,
    schema: {
      tags: ['auth'],
      summary: 'Exchange email and password for an access and a refresh token',
      description: 'Unknown email, wrong password and disabled account all answer 401 invalid_credentials. Failed attempts are throttled per IP and per account (429 with Retry-After).',
      security: [],
      body: Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX }) }, { additionalProperties: false }),
      response: { 200: LoginResponse, ...errors(400, 401, 429, 500, 503) },
    },
  }, async (request) => {
    const res = await login(fastify, request.body, meta(request))
    if (!res.ok) {
      await fastify.audit(request, {
        action: 'auth.login_failed',
        actorId: null,
        subject: res.userId !== null ? `user:${res.userId}` : null,
        payload: { email: request.body.email.trim().toLowerCase().slice(0, 254), reason: res.reason },
      })
      throw unauthorized('Wrong email or password', 'invalid_credentials')
    }
    await fastify.audit(request, { action: 'auth.login', actorId: res.user.id, subject: `session:${res.pair.sessionId}` })
    const { sessionId: _sid, ...pair } = res.pair
    return { ...pair, user: toMe(res.user) }
  })

  fastify.post('/refresh', {
    config: { public: true },
    schema: {
      tags: ['auth'],
      summary: 'Rotate a refresh token into a new token pair',
      description: 'The presented refresh token stops working. Presenting an already rotated one revokes the whole session (401 token_revoked). No grace window: concurrent refreshes with one token count as reuse.',
      security: [],
      body: Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
      response: { 200: TokenPairResponse, ...errors(400, 401, 429, 500, 503) },
    },
  }, async (request) => {
    const res = await rotateRefreshToken(fastify, request.body.refreshToken, meta(request))
    if (res.ok) return res.pair
    if (res.reason === 'reuse') {
      request.log.warn({ sessionId: res.sessionId }, 'refresh token reuse: session revoked')
      await fastify.audit(request, { action: 'auth.refresh_reuse', actorId: res.userId ?? null, subject: `session:${res.sessionId ?? ''}` })
    }
    if (res.reason === 'invalid') throw unauthorized('Invalid refresh token; log in again with POST /auth/login')
    if (res.reason === 'disabled') throw unauthorized('This account is disabled; ask an admin to enable it')
    if (res.reason === 'expired') throw unauthorized('Session expired, log in again', 'token_expired')
    throw unauthorized('This session was ended (logout, password change, token reuse or an admin); log in again', 'token_revoked')
  })
}

export default credentials
