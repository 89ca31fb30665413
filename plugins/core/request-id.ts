import fp from 'fastify-plugin'

/** Every response carries x-request-id (the caller's when sane: see src/options.ts). */
export default fp(async (fastify) => {
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
}, { name: 'request-id' })
