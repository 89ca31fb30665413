import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'

export default fp(async (fastify) => {
  await fastify.register(jwt, {
    secret: fastify.config.JWT_SECRET,
    sign: { algorithm: 'HS256', expiresIn: fastify.config.ACCESS_TOKEN_TTL },
    // Verified tokens are cached (fast-jwt's LRU under a hash of the token; an entry never
    // outlives the token's `exp`; failures are not cached): ~2–3 µs per hit instead of ~9 for the
    // full verification. The revocation check stays per request (the auth plugin).
    // A correctly signed token must still carry an expiry and say whose session it is: without
    // `exp` it would live as long as its session, without `sub`/`sid` it names nobody.
    verify: { algorithms: ['HS256'], cache: 10_000, requiredClaims: ['exp', 'sub', 'sid'] },
  })
}, { name: 'jwt', dependencies: ['config'] })
