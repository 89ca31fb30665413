import fp from 'fastify-plugin'
import type { Pool } from 'mysql2/promise'
import { createDb, createPool, type Db } from '../../src/db.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    dbPool: Pool
  }
}

export default fp(async (fastify) => {
  const pool = createPool(fastify.config.DATABASE_URL, fastify.config.DATABASE_POOL_SIZE)
  // A second pool, for multi-statement transactions only (`sqlAtomic`): the main pool keeps
  // mysql2's default of one statement per query.
  const batch = createPool(fastify.config.DATABASE_URL, fastify.config.DATABASE_POOL_SIZE, { multipleStatements: true, maxIdle: 2 })
  fastify.decorate('dbPool', pool)
  fastify.decorate('db', createDb(pool, batch))
  fastify.addHook('onClose', async () => { await Promise.all([pool.end(), batch.end()]) })
}, { name: 'db', dependencies: ['config'] })
