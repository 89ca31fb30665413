import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { auditContext } from '../../plugins/app/audit.js'
import { authErrors, errors, Id, IdParam, NoContent, Page, PageQuery, withHeaders } from '../../src/schemas/common.js'
import { CreateWebhook, Delivery, DeliveryQuery, Queued, UpdateWebhook, Webhook, WebhookMaybeSecret, WebhookWithSecret } from '../../src/schemas/webhooks.js'

const DeliveryParams = Type.Object({ id: Id(), deliveryId: Id() }, { additionalProperties: false })

/** Outbound webhooks (`webhooks:manage`): endpoints, their signing secrets and delivery logs (docs/webhooks.md). */
const webhookRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const config = { permission: 'webhooks:manage' as const }
  const hooks = fastify.webhooks.service
  const tags = ['webhooks']

  fastify.post('/', {
    config,
    schema: {
      tags,
      summary: 'Register an endpoint; the answer holds its signing secret, shown only once',
      description: 'The URL must resolve to public addresses (400 webhook_url_refused otherwise, unless WEBHOOK_ALLOW_PRIVATE).',
      body: CreateWebhook,
      response: { 201: withHeaders(WebhookWithSecret, 'Location'), ...authErrors },
    },
  }, async (request, reply) => {
    const created = await hooks.create(auditContext(request), request.body)
    return await reply.code(201).header('location', `/webhooks/${created.id}`).send(created)
  })

  fastify.get('/', {
    config,
    schema: { tags, summary: 'List endpoints, newest first', querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }), response: { 200: Page(Webhook), ...authErrors } },
  }, async (request) => await hooks.list({ limit: request.query.limit ?? 20, cursor: request.query.cursor }))

  fastify.get('/:id', {
    config,
    schema: { tags, summary: 'One endpoint (never its secret)', params: IdParam, response: { 200: Webhook, ...authErrors, ...errors(404) } },
  }, async (request) => await hooks.get(request.params.id))

  fastify.patch('/:id', {
    config,
    schema: {
      tags,
      summary: 'Change URL, events, description or status; rotate the secret',
      description: '`status: active` re-enables a disabled or failing endpoint; `rotateSecret: true` answers the new secret, once.',
      params: IdParam,
      body: UpdateWebhook,
      response: { 200: WebhookMaybeSecret, ...authErrors, ...errors(404) },
    },
  }, async (request) => await hooks.update(auditContext(request), request.params.id, request.body))

  fastify.delete('/:id', {
    config,
    schema: { tags, summary: 'Delete an endpoint and its delivery log', params: IdParam, response: { 204: NoContent, ...authErrors, ...errors(404) } },
  }, async (request, reply) => {
    await hooks.remove(auditContext(request), request.params.id)
    return await reply.code(204).send(null)
  })

  fastify.post('/:id/test', {
    config,
    schema: { tags, summary: 'Send a webhook.ping event to the endpoint', params: IdParam, response: { 202: Queued, ...authErrors, ...errors(404) } },
  }, async (request, reply) => await reply.code(202).send(await hooks.ping(auditContext(request), request.params.id)))

  fastify.get('/:id/deliveries', {
    config,
    schema: {
      tags,
      summary: 'The endpoint\'s deliveries, newest first, each with every attempt',
      params: IdParam,
      querystring: DeliveryQuery,
      response: { 200: Page(Delivery), ...authErrors, ...errors(404) },
    },
  }, async (request) => await hooks.deliveries(request.params.id, { limit: request.query.limit ?? 20, cursor: request.query.cursor, status: request.query.status }))

  fastify.post('/:id/deliveries/:deliveryId/redeliver', {
    config,
    schema: {
      tags,
      summary: 'Send a delivered or failed delivery again (same webhook-id, a new retry window)',
      params: DeliveryParams,
      response: { 202: Queued, ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => await reply.code(202).send(await hooks.redeliver(auditContext(request), request.params.id, request.params.deliveryId)))
}

export default webhookRoutes
