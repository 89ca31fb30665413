import fp from 'fastify-plugin'
import { ErrorResponse } from '../../src/schemas/common.js'

/** Shared schemas, added once and referenced by $ref from routes. */
export default fp(async (fastify) => {
  fastify.addSchema(ErrorResponse)
}, { name: 'schemas' })
