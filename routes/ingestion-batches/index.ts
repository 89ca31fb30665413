import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IdParam, authErrors, errors } from '../../src/schemas/common.js'
import { Batch } from '../../src/schemas/ingestions.js'
import { actorContext } from '../../plugins/app/ingestions.js'

/** Bulk re-runs (POST /ingestions with `filter`): their progress, for the requester and ingestions:manage. */
const batchRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/:id', {
    config: { permission: 'ingestions:read' },
    schema: {
      tags: ['ingestions'],
      summary: 'A bulk re-run: how many documents matched, and its ingestions by status',
      description: 'Visible to whoever asked for it and to `ingestions:manage` (404 for anyone else).',
      params: IdParam,
      response: { 200: Batch, ...authErrors, ...errors(404) },
    },
  }, async (request) => await fastify.ingestions.getBatch(actorContext(request), request.params.id))
}

export default batchRoutes
