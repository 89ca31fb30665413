import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Id, IdParam, Page, PageQuery, authErrors, errors } from '../../src/schemas/common.js'
import { BatchAccepted, BulkTriggerBody, FilterTriggerBody, IdempotencyHeaders, Ingestion, IngestionStatus } from '../../src/schemas/ingestions.js'
import { actorContext } from '../../plugins/app/ingestions.js'

/**
 * Cancel and retry: your own ingestions with ingestions:trigger (and write access to the
 * document), anyone's with ingestions:manage. Answered after the lookup: an ingestion you cannot
 * see is a 404 whatever your permissions.
 */
const CHANGE = ['ingestions:trigger', 'ingestions:manage'] as const

const ingestionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    config: { permission: 'ingestions:read', replicaRead: true },
    schema: {
      tags: ['ingestions'],
      summary: 'List ingestions of documents I can see, newest first',
      querystring: Type.Object({ ...PageQuery, documentId: Type.Optional(Id()), status: Type.Optional(IngestionStatus) }, { additionalProperties: false }),
      response: { 200: Page(Ingestion), ...authErrors },
    },
  }, async (request) => {
    const q = request.query
    return await fastify.ingestions.list(actorContext(request), { limit: q.limit ?? 20, cursor: q.cursor, documentId: q.documentId, status: q.status }, request.readHint)
  })

  fastify.post('/', {
    // Either form's permission lets the request in; the domain asks for the one its form needs.
    config: { permission: ['ingestions:trigger', 'ingestions:manage'] },
    schema: {
      tags: ['ingestions'],
      summary: 'Ingest several documents (1..100, no duplicates), or every document matching a filter',
      description: 'With `documentIds` (needs `ingestions:trigger`, else 403): all or nothing: every document is checked first; one invisible (or unknown) id answers 404 naming it, one that is readable but not writable answers 403, and nothing is created. ' +
        'With `Idempotency-Key`, a repeated request returns the same ingestions (each document keyed `<key>#<documentId>`). 503 when the job queue is down (nothing is created). ' +
        'With `filter` (needs `ingestions:manage`, else 403): a bulk re-run of every live document matching it that the caller may write, answered 202 `{batchId, matched}` at once and expanded in the background (`GET /ingestion-batches/:id`).',
      headers: IdempotencyHeaders,
      body: Type.Union([BulkTriggerBody, FilterTriggerBody]),
      response: { 202: Type.Union([Type.Object({ items: Type.Array(Ingestion) }), BatchAccepted]), ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    const b = request.body
    if ('filter' in b) {
      return await reply.code(202).send(await fastify.ingestions.createBatch(actorContext(request), { filter: b.filter, pipeline: b.pipeline, options: b.options ?? {} }))
    }
    const items = await fastify.ingestions.triggerMany(actorContext(request), b.documentIds, {
      pipeline: b.pipeline ?? 'default',
      options: b.options ?? {},
      idempotencyKey: request.headers['idempotency-key'] ?? null,
    })
    return await reply.code(202).send({ items })
  })

  fastify.get('/:id', {
    config: { permission: 'ingestions:read' },
    schema: { tags: ['ingestions'], summary: 'One ingestion with its events', params: IdParam, response: { 200: Ingestion, ...authErrors, ...errors(404) } },
  }, async (request) => await fastify.ingestions.get(actorContext(request), request.params.id))

  fastify.post('/:id/retry', {
    config: { permission: CHANGE, permissionAfterLookup: true },
    schema: {
      tags: ['ingestions'],
      summary: 'Retry a failed or cancelled ingestion (a new attempt cycle)',
      description: 'Needs `ingestions:manage`, or `ingestions:trigger` with write access to the document. 409 `invalid_transition` for other statuses.',
      params: IdParam,
      response: { 202: Ingestion, ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    return await reply.code(202).send(await fastify.ingestions.retry(actorContext(request), request.params.id))
  })

  fastify.post('/:id/cancel', {
    config: { permission: CHANGE, permissionAfterLookup: true },
    schema: {
      tags: ['ingestions'],
      summary: 'Cancel a queued or running ingestion',
      description: 'Further attempts stop and a late callback is ignored. Needs `ingestions:manage`, or `ingestions:trigger` with write access to the document. 409 `invalid_transition` when already final.',
      params: IdParam,
      response: { 200: Ingestion, ...authErrors, ...errors(404, 409) },
    },
  }, async (request) => await fastify.ingestions.cancel(actorContext(request), request.params.id))
}

export default ingestionRoutes
