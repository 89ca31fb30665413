import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

const metrics: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    config: { public: true, rateLimit: false },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format). Public: restrict it at the proxy or network level.',
      security: [],
      response: { 200: Type.String({ description: 'Prometheus text format' }) },
    },
  }, async (_request, reply) => {
    const body = await fastify.metrics.registry.metrics()
    return await reply.type(fastify.metrics.registry.contentType).send(body)
  })
}

export default metrics
