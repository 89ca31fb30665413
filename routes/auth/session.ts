import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { auditContext } from '../../plugins/app/audit.js'
import { listActiveSessions } from '../../src/domain/sessions.js'
import { getUser, toMe } from '../../src/domain/users.js'
import { unauthorized } from '../../src/lib/errors.js'
import { IdParam, NoContent, authErrors, errors } from '../../src/schemas/common.js'
import { MeWithUsage, NewPassword, Session } from '../../src/schemas/auth.js'
import { quotaUsage } from '../../src/domain/quota.js'
import { PASSWORD_MAX } from '../../src/domain/passwords.js'

/** The caller's own account and sessions (any signed-in user). */
const session: FastifyPluginAsyncTypebox = async (fastify) => {
  const auth = fastify.authService

  fastify.post('/logout', {
    config: { sessionOnly: true },
    schema: { tags: ['auth'], summary: 'End this session: its access and refresh tokens stop working at once', response: { 204: NoContent, ...authErrors } },
  }, async (request, reply) => {
    await auth.logout(auditContext(request), request.user.sid)
    return await reply.code(204).send(null)
  })

  fastify.post('/logout-all', {
    config: { sessionOnly: true },
    schema: { tags: ['auth'], summary: 'End every session of the caller', response: { 204: NoContent, ...authErrors } },
  }, async (request, reply) => {
    await auth.logoutAll(auditContext(request))
    return await reply.code(204).send(null)
  })

  fastify.get('/me', {
    schema: {
      tags: ['auth'],
      summary: 'The caller, with the effective permission set (with an API key: the key\'s)',
      description: 'Also the storage quota: `usedBytes` (every stored version of the documents you own, trashed ones included until purged), ' +
        '`reservedBytes` (uploads in progress) and `quotaBytes` (the limit that applies to you; 0 = unlimited).',
      response: { 200: MeWithUsage, ...authErrors },
    },
  }, async (request) => {
    const user = await getUser(fastify.db, request.user.id)
    if (user === undefined) throw unauthorized('This session was ended (logout, password change or an admin); log in again', 'token_revoked')
    const me = { ...toMe(user), ...quotaUsage(user, fastify.config.QUOTA_DEFAULT_BYTES) }
    // With an API key: what the key may do (its scopes within the owner's permissions).
    return request.user.keyId === undefined ? me : { ...me, permissions: request.user.permissions }
  })

  fastify.post('/password', {
    config: { sessionOnly: true },
    schema: {
      tags: ['auth'],
      summary: 'Change the password; every other session of the caller is revoked',
      body: Type.Object({ currentPassword: Type.String({ minLength: 1, maxLength: PASSWORD_MAX }), newPassword: NewPassword }, { additionalProperties: false }),
      response: { 204: NoContent, ...authErrors },
    },
  }, async (request, reply) => {
    await auth.changePassword(auditContext(request), request.user.sid, request.body.currentPassword, request.body.newPassword)
    return await reply.code(204).send(null)
  })

  fastify.get('/sessions', {
    config: { sessionOnly: true },
    schema: { tags: ['auth'], summary: "The caller's active sessions, newest first", response: { 200: Type.Array(Session), ...authErrors } },
  }, async (request) => await listActiveSessions(fastify.db, request.user.id, request.user.sid))

  fastify.delete('/sessions/:id', {
    config: { sessionOnly: true },
    schema: { tags: ['auth'], summary: 'End one of the caller\'s sessions', params: IdParam, response: { 204: NoContent, ...authErrors, ...errors(404) } },
  }, async (request, reply) => {
    await auth.revokeOwnSession(auditContext(request), request.params.id)
    return await reply.code(204).send(null)
  })
}

export default session
