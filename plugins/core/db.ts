import fp from 'fastify-plugin'
import type { Pool } from 'mysql2/promise'
import { createDb, createPool, type Db } from '../../src/db.js'
import { primaryOnly, replicaRouter, type ReadRouter } from '../../src/db/replica.js'
import { redisPosition } from '../../src/db/replica-fence.js'

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
  interface FastifyRequest {
    /** A list route's `reads.hint()`, started with the request's first Redis round trip (plugins/external/rate-limit.ts). */
    readHint: Promise<string | null> | null
    /** The request reached its handler and may write: its answer waits for the primary's position to be published. */
    mayWrite: boolean
  }
  interface FastifyContextConfig {
    /** A list that reads the replica: its request fetches the published position early (`readHint`). */
    replicaRead?: boolean
    /** A GET (or HEAD) that writes (a download's audit row): it publishes the primary's position as the other methods do. */
    writes?: boolean
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
    : replicaRouter(db, createDb(replicaPool), {
      maxWaitMs: config.DATABASE_REPLICA_MAX_WAIT_MS,
      retryMs: config.DATABASE_REPLICA_RETRY_MS,
      log: fastify.log,
      published: redisPosition(fastify.redis, fastify.redisKey('replica', 'position')),
    }))
  fastify.decorateRequest('readHint', null)
  fastify.decorateRequest('mayWrite', false)
  if (replicaPool !== null) {
    // What Redis holds after a reconnect or a cluster node change may predate the last publish.
    for (const event of ['ready', '-node', '+node']) fastify.redis.on(event, () => { fastify.reads.distrust() })
    // Every request that may have written publishes the primary's position before its answer
    // goes out, so that a list on any process, arriving after that answer, waits for it. Whatever
    // its status: a failed login answers 401 after its audit row is written. A request turned away
    // before its handler (authentication, rate limit, validation, no such route) wrote nothing.
    fastify.addHook('preHandler', async (request) => {
      const read = request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS'
      if (!request.is404 && (!read || request.routeOptions.config?.writes === true)) request.mayWrite = true
    })
    fastify.addHook('onSend', async (request, reply, payload) => {
      if (!request.mayWrite) return payload
      await fastify.reads.afterWrite().catch((err: unknown) => { request.log.error({ err }, 'could not publish the primary\'s position for the read replica') })
      return payload
    })
  }
  fastify.addHook('onClose', async () => { await Promise.all([pool.end(), batch.end(), replicaPool?.end()]) })
}, { name: 'db', dependencies: ['config', 'redis'] })
