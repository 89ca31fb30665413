import { type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { textResponse } from '../../src/schemas/common.js'

const metrics: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    config: { public: true, rateLimit: false },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format). Public: restrict it at the proxy or network level.',
      security: [],
      response: { 200: textResponse(fastify.metrics.registry.contentType, 'Prometheus text exposition format') },
    },
  }, async (_request, reply) => {
    const body = await fastify.metrics.registry.metrics()
    return await reply.type(fastify.metrics.registry.contentType).send(body)
  })
}

export default metrics
