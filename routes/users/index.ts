import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { publishSessionRevoked, publishUserState } from '../../src/domain/auth-state.js'
import { hashPassword } from '../../src/domain/passwords.js'
import { authDeps } from '../../src/domain/sessions.js'
import { deleteUser, getUser, insertUser, listUsers, toUserView, updateUser } from '../../src/domain/users.js'
import { notFound } from '../../src/lib/errors.js'
import { Id, IdParam, NoContent, Page, PageQuery, authErrors, errors, withHeaders } from '../../src/schemas/common.js'
import { Email, Name, NewPassword, PermissionList, RoleName, User, trimEmail } from '../../src/schemas/auth.js'
import lookupRoutes from './lookup.js'

/** User administration (`users:manage`). Every change is audited and takes effect on the user's next request. */
const usersRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const config = { permission: 'users:manage' as const }
  const deps = authDeps(fastify)
  // GET /users/lookup (documents:share): autoload loads only this index file of the folder.
  await fastify.register(lookupRoutes)

  fastify.get('/', {
    config,
    schema: {
      tags: ['users'],
      summary: 'List users, newest first',
      querystring: Type.Object({ ...PageQuery, role: Type.Optional(RoleName), q: Type.Optional(Type.String({ maxLength: 254, description: 'substring of email or name' })) }, { additionalProperties: false }),
      response: { 200: Page(User), ...authErrors },
    },
  }, async (request) => await listUsers(fastify.db, { ...request.query, limit: request.query.limit ?? 20 }))

  fastify.post('/', {
    config,
    preValidation: trimEmail,
    schema: {
      tags: ['users'],
      summary: 'Create a user with a role',
      body: Type.Object({
        email: Email, password: NewPassword, name: Type.Optional(Name), role: RoleName, grants: Type.Optional(PermissionList), revokes: Type.Optional(PermissionList),
      }, { additionalProperties: false }),
      response: { 201: withHeaders(User, 'Location'), ...authErrors, ...errors(409) },
    },
  }, async (request, reply) => {
    const { password, ...rest } = request.body
    const user = await insertUser(fastify.db, { ...rest, passwordHash: await hashPassword(password, fastify.config.BCRYPT_COST) })
    await fastify.audit(request, { action: 'user.create', subject: `user:${user.id}`, payload: { email: user.email, role: user.role, grants: user.grants, revokes: user.revokes } })
    return await reply.code(201).header('location', `/users/${user.id}`).send(toUserView(user))
  })

  fastify.get('/:id', {
    config,
    schema: { tags: ['users'], summary: 'One user', params: IdParam, response: { 200: User, ...authErrors, ...errors(404) } },
  }, async (request) => {
    const user = await getUser(fastify.db, request.params.id)
    if (user === undefined) throw notFound('User')
    return toUserView(user)
  })

  fastify.patch('/:id', {
    config,
    schema: {
      tags: ['users'],
      summary: 'Change name, role, grants, revokes or disabled',
      description: 'Authorization changes apply to the user\'s very next request; disabling also revokes every session. Demoting or disabling the last admin: 409 last_admin.',
      params: IdParam,
      body: Type.Object({
        name: Type.Optional(Type.Union([Name, Type.Null()])), role: Type.Optional(RoleName), grants: Type.Optional(PermissionList), revokes: Type.Optional(PermissionList), disabled: Type.Optional(Type.Boolean()),
      }, { additionalProperties: false }),
      response: { 200: User, ...authErrors, ...errors(404, 409) },
    },
  }, async (request) => {
    const res = await updateUser(fastify.db, request.params.id, request.body)
    if (res.changed.length === 0) return toUserView(res.user)
    await publishSessionRevoked(deps, res.revokedSessions)
    if (res.authChanged) await publishUserState(deps, res.user.id)
    const after = Object.fromEntries(res.changed.map(k => [k, res.user[k]]))
    await fastify.audit(request, { action: 'user.update', subject: `user:${res.user.id}`, payload: { changed: after, sessionsRevoked: res.revokedSessions.length } })
    return toUserView(res.user)
  })

  fastify.delete('/:id', {
    config,
    schema: {
      tags: ['users'],
      summary: 'Delete a user; their documents go to transferTo, or to the trash',
      params: IdParam,
      querystring: Type.Object({ transferTo: Type.Optional(Id({ description: 'id of the user who receives the documents' })) }, { additionalProperties: false }),
      response: { 204: NoContent, ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    const id = request.params.id
    const res = await deleteUser(fastify.db, id, request.query.transferTo)
    await publishSessionRevoked(deps, res.revokedSessions)
    await publishUserState(deps, id)
    await fastify.audit(request, { action: 'user.delete', subject: `user:${id}`, payload: { transferTo: request.query.transferTo ?? null, ...res, revokedSessions: res.revokedSessions.length } })
    return await reply.code(204).send(null)
  })
}

export default usersRoutes
