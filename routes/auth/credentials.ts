import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { toMe } from '../../src/domain/users.js'
import { auditContext } from '../../plugins/app/audit.js'
import { errors } from '../../src/schemas/common.js'
import { Email, LoginResponse, Me, Name, NewPassword, TokenPairResponse, trimEmail } from '../../src/schemas/auth.js'
import { PASSWORD_MAX } from '../../src/domain/passwords.js'

/** The routes that need no access token: register, login, refresh. */
const credentials: FastifyPluginAsyncTypebox = async (fastify) => {
  const auth = fastify.authService

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
    const user = await auth.register(request.body, auditContext(request))
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
    const res = await auth.login(request.body, auditContext(request))
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
    return await auth.refresh(request.body.refreshToken, auditContext(request))
  })
}

export default credentials
