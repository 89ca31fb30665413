import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'

export default fp(async (fastify) => {
  await fastify.register(jwt, {
    secret: fastify.config.JWT_SECRET,
    sign: { algorithm: 'HS256', expiresIn: fastify.config.ACCESS_TOKEN_TTL },
    verify: { algorithms: ['HS256'] },
  })
}, { name: 'jwt', dependencies: ['config'] })
