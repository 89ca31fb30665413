import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { Pool } from 'mysql2/promise'
import { createDb, createPool, type Db } from '../../src/db.js'
import { primaryOnly, type ReadRouter } from '../../src/db/read-router.js'
import { replicaRouter } from '../../src/db/replica.js'
import { announceReader, readersExist, READERS_CHECK_MS, READERS_TRUST_AFTER_MS, redisPosition } from '../../src/db/replica-fence.js'

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
  const published = redisPosition(fastify.redis, fastify.redisKey('replica', 'position'))
  const readersKey = fastify.redisKey('replica', 'readers')
  /** With a replica: since when the deployment has replica readers (Redis); without: whether it has. */
  let readersSince = Number.POSITIVE_INFINITY
  let readersElsewhere = false
  fastify.decorate('reads', replicaPool === null
    ? primaryOnly(db, { published, elsewhere: () => readersElsewhere })
    : replicaRouter(db, createDb(replicaPool), {
      maxWaitMs: config.DATABASE_REPLICA_MAX_WAIT_MS,
      retryMs: config.DATABASE_REPLICA_RETRY_MS,
      log: fastify.log,
      published,
      trustFrom: () => readersSince + READERS_TRUST_AFTER_MS,
    }))
  fastify.decorateRequest('readHint', null)
  fastify.decorateRequest('mayWrite', false)
  // Lists on a replica (here or in another process of the deployment) must have every write
  // answered before them: a process that reads a replica says so in Redis, and one without a
  // replica that sees it publishes after its writes too (a worker, an older process during a
  // rolling deploy). Checked at start and every READERS_CHECK_MS.
  const check = async (): Promise<void> => {
    if (replicaPool !== null) {
      readersSince = await announceReader(fastify.redis, readersKey)
      return
    }
    const seen = await readersExist(fastify.redis, readersKey)
    if (seen && !readersElsewhere) fastify.log.error('other processes of this deployment read a replica (DATABASE_REPLICA_URL) but this one has none: it publishes the position of its writes for their lists; set DATABASE_REPLICA_URL here too')
    readersElsewhere = seen
  }
  const checks = setInterval(() => { check().catch(() => { /* Redis down: the next check */ }) }, READERS_CHECK_MS)
  checks.unref()
  fastify.addHook('onReady', async () => { await check().catch(() => {}) })
  if (replicaPool !== null) {
    // What Redis holds after a reconnect or a cluster node change may predate the last publish.
    for (const event of ['ready', '-node', '+node']) fastify.redis.on(event, () => { fastify.reads.distrust() })
  }
  // Every request that may have written publishes the primary's position before its answer
  // goes out, so that a list on any process, arriving after that answer, waits for it. Whatever
  // its status: a failed login answers 401 after its audit row is written. A request turned away
  // before its handler (authentication, rate limit, validation, no such route) wrote nothing.
  // Route hooks, on the routes that may write only (not GET/HEAD/OPTIONS, unless `config.writes`):
  // the reads pay nothing.
  const markWrite = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (replicaPool !== null || readersElsewhere) request.mayWrite = true
    done()
  }
  const publishWrite = (request: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void => {
    if (!request.mayWrite) {
      done(null, payload)
      return
    }
    fastify.reads.afterWrite()
      .catch((err: unknown) => { request.log.error({ err }, 'could not publish the primary\'s position for the read replica') })
      .finally(() => { done(null, payload) })
  }
  const READS = new Set(['GET', 'HEAD', 'OPTIONS'])
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (methods.every(m => READS.has(m)) && route.config?.writes !== true) return
    const list = <T>(h: T | T[] | undefined): T[] => h === undefined ? [] : Array.isArray(h) ? h : [h]
    route.preHandler = [...list(route.preHandler), markWrite] as typeof route.preHandler
    route.onSend = [...list(route.onSend), publishWrite] as typeof route.onSend
  })
  fastify.addHook('onClose', async () => {
    clearInterval(checks)
    await Promise.all([pool.end(), batch.end(), replicaPool?.end()])
  })
}, { name: 'db', dependencies: ['config', 'redis'] })
