import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { auditContext } from '../../plugins/app/audit.js'
import { Id, IdParam, NoContent, Page, PageQuery, authErrors, errors, withHeaders } from '../../src/schemas/common.js'
import { ApiKey, CreateApiKeyBody, CreatedApiKey } from '../../src/schemas/api-keys.js'

/**
 * API keys for scripts and CI (issue 21): any signed-in user manages their own; `users:manage`
 * also those of others and makes the keys of service accounts. Creating one needs a user session.
 */
const apiKeyRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const keys = fastify.apiKeys

  fastify.post('/', {
    config: { sessionOnly: true },
    schema: {
      tags: ['api-keys'],
      summary: 'Make an API key; the key is in this answer only',
      description: 'scopes must be permissions the owner has (400 scope_not_held names the others). Requests made with the key get its scopes ∩ the owner\'s current permissions and the owner\'s document access. With userId (users:manage) the key is made for that service account. Refused to an API key (403 session_required).',
      body: CreateApiKeyBody,
      response: { 201: withHeaders(CreatedApiKey, 'Location'), ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    const created = await keys.create(request.user, request.body, auditContext(request))
    return await reply.code(201).header('location', `/api-keys/${created.id}`).header('cache-control', 'no-store').send(created)
  })

  fastify.get('/', {
    schema: {
      tags: ['api-keys'],
      summary: 'The caller\'s API keys (any user\'s with users:manage and userId), newest first',
      querystring: Type.Object({ ...PageQuery, userId: Type.Optional(Id({ description: 'users:manage: the keys of this user' })) }, { additionalProperties: false }),
      response: { 200: Page(ApiKey), ...authErrors },
    },
  }, async (request) => await keys.list(request.user, { ...request.query, limit: request.query.limit ?? 20 }))

  fastify.get('/:id', {
    schema: { tags: ['api-keys'], summary: 'One API key (never the key itself)', params: IdParam, response: { 200: ApiKey, ...authErrors, ...errors(404) } },
  }, async (request) => await keys.get(request.user, request.params.id))

  fastify.delete('/:id', {
    schema: {
      tags: ['api-keys'],
      summary: 'Revoke an API key: refused on every API process from the next request',
      description: 'Idempotent. An API key may revoke only itself (403 session_required for another).',
      params: IdParam,
      response: { 204: NoContent, ...authErrors, ...errors(404) },
    },
  }, async (request, reply) => {
    await keys.revoke(request.user, request.params.id, auditContext(request))
    return await reply.code(204).send(null)
  })
}

export default apiKeyRoutes
