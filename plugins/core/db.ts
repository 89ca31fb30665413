import fp from 'fastify-plugin'
import type { Pool } from 'mysql2/promise'
import { createDb, createPool, type Db } from '../../src/db.js'
import { primaryOnly, replicaRouter, type ReadRouter } from '../../src/db/replica.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    dbPool: Pool
    /**
     * The list and search reads: on the read replica (DATABASE_REPLICA_URL) once it caught up with
     * the primary, else on the primary (src/db/replica.ts). Nothing that decides authorization.
     */
    reads: ReadRouter
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  const pool = createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE)
  // A second pool, for multi-statement transactions only (`sqlAtomic`): the main pool keeps
  // mysql2's default of one statement per query.
  const batch = createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE, { multipleStatements: true, maxIdle: 2 })
  const db = createDb(pool, batch)
  // The replica's pool connects lazily, like the others: a replica down at boot only sends lists to the primary.
  const replicaPool = config.DATABASE_REPLICA_URL === '' ? null : createPool(config.DATABASE_REPLICA_URL, config.DATABASE_POOL_SIZE, { connectTimeout: 2000 })
  fastify.decorate('dbPool', pool)
  fastify.decorate('db', db)
  fastify.decorate('reads', replicaPool === null
    ? primaryOnly(db)
    : replicaRouter(db, createDb(replicaPool), { maxWaitMs: config.DATABASE_REPLICA_MAX_WAIT_MS, retryMs: config.DATABASE_REPLICA_RETRY_MS, log: fastify.log }))
  fastify.addHook('onClose', async () => { await Promise.all([pool.end(), batch.end(), replicaPool?.end()]) })
}, { name: 'db', dependencies: ['config'] })
