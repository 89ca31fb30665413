import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { getUser, listUsers, toUserView } from '../../src/domain/users.js'
import { auditContext } from '../../plugins/app/audit.js'
import { notFound } from '../../src/lib/errors.js'
import { Id, IdParam, NoContent, Page, PageQuery, authErrors, errors, withHeaders } from '../../src/schemas/common.js'
import { Email, Name, NewPassword, PermissionList, QuotaBytes, RoleName, User, UserKind, trimEmail } from '../../src/schemas/auth.js'
import lookupRoutes from './lookup.js'

/** User administration (`users:manage`). Every change is audited and takes effect on the user's next request. */
const usersRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const config = { permission: 'users:manage' as const }
  const admin = fastify.userAdmin
  // GET /users/lookup (documents:share): autoload loads only this index file of the folder.
  await fastify.register(lookupRoutes)

  fastify.get('/', {
    config: { ...config, replicaRead: true },
    schema: {
      tags: ['users'],
      summary: 'List users, newest first',
      querystring: Type.Object({ ...PageQuery, role: Type.Optional(RoleName), kind: Type.Optional(UserKind), q: Type.Optional(Type.String({ maxLength: 254, description: 'substring of email or name' })) }, { additionalProperties: false }),
      response: { 200: Page(User), ...authErrors },
    },
  }, async (request) => await fastify.reads.read(async db => await listUsers(db, { ...request.query, limit: request.query.limit ?? 20 }), request.readHint))

  fastify.post('/', {
    config,
    preValidation: trimEmail,
    schema: {
      tags: ['users'],
      summary: 'Create a user with a role, or a service account',
      description: 'A person: email and password (required). A service account (`kind: "service"`): a name and no email or password; it cannot log in, is never counted as the last admin, and uses API keys an admin makes for it (POST /api-keys with userId).',
      body: Type.Object({
        kind: Type.Optional(UserKind),
        email: Type.Optional(Email),
        password: Type.Optional(NewPassword),
        name: Type.Optional(Name),
        role: RoleName,
        grants: Type.Optional(PermissionList),
        revokes: Type.Optional(PermissionList),
      }, { additionalProperties: false }),
      response: { 201: withHeaders(User, 'Location'), ...authErrors, ...errors(409) },
    },
  }, async (request, reply) => {
    const user = await admin.create(request.body, auditContext(request))
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
      description: 'Authorization changes apply to the user\'s very next request; disabling also revokes every session. Demoting or disabling the last admin: 409 last_admin. ' +
        '`quotaBytes`: the user\'s storage quota in bytes (0 = unlimited, null = back to QUOTA_DEFAULT_BYTES); lowering it below the usage deletes nothing, it refuses further uploads.',
      params: IdParam,
      body: Type.Object({
        name: Type.Optional(Type.Union([Name, Type.Null()])),
        role: Type.Optional(RoleName),
        grants: Type.Optional(PermissionList),
        revokes: Type.Optional(PermissionList),
        disabled: Type.Optional(Type.Boolean()),
        quotaBytes: Type.Optional(QuotaBytes),
      }, { additionalProperties: false }),
      response: { 200: User, ...authErrors, ...errors(404, 409) },
    },
  }, async (request) => toUserView(await admin.update(request.params.id, request.body, auditContext(request))))

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
    await admin.remove(request.params.id, request.query.transferTo, auditContext(request))
    return await reply.code(204).send(null)
  })
}

export default usersRoutes
