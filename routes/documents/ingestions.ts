import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IdParam, authErrors, errors } from '../../src/schemas/common.js'
import { IdempotencyHeaders, Ingestion, TriggerBody } from '../../src/schemas/ingestions.js'
import { actorContext } from '../../plugins/app/ingestions.js'

/** POST /documents/:id/ingestions — the "ingest" button for one document. */
const documentIngestions: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/:id/ingestions', {
    config: { permission: 'ingestions:trigger' },
    schema: {
      tags: ['ingestions'],
      summary: 'Ingest one document',
      description: 'Writes a queued ingestion and enqueues its dispatch; needs write access to the document (403 when only readable, 404 when invisible). ' +
        'With `Idempotency-Key`, the same key from the same user returns the same ingestion (409 `idempotency_key_reused` if it was used for another document). ' +
        '503 when the job queue is down (nothing is created).',
      params: IdParam,
      headers: IdempotencyHeaders,
      // Optional (see preValidation): marked so for OpenAPI, where it becomes `requestBody.required: false`.
      body: Type.Optional(TriggerBody),
      response: { 202: Ingestion, ...authErrors, ...errors(404, 409) },
    },
    // The body is optional: a bare POST means the default pipeline with no options.
    preValidation: async (request) => { request.body ??= {} },
  }, async (request, reply) => {
    const body = request.body
    const item = await fastify.ingestions.trigger(actorContext(request), request.params.id, {
      pipeline: body.pipeline ?? 'default',
      options: body.options ?? {},
      idempotencyKey: request.headers['idempotency-key'] ?? null,
    })
    return await reply.code(202).send(item)
  })
}

export default documentIngestions
