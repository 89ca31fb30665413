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
  fastify.decorate('dbPool', pool)
  fastify.decorate('db', createDb(pool))
  fastify.addHook('onClose', async () => { await pool.end() })
}, { name: 'db', dependencies: ['config'] })
