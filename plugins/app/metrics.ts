import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { QUEUE_NAMES } from '../../src/jobs/types.js'
import { poolStats } from '../../src/db-pool-stats.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: {
      registry: Registry
      jobOutcomes: Counter<'queue' | 'job' | 'outcome'>
      /** List and search reads by target (replica, primary): src/db/replica.ts. */
      listReads: Counter<'target'>
      /** Where the replica's lists took the position they waited for (published, primary). */
      replicaPositions: Counter<'source'>
      gauges: Gauge[]
    }
  }
}

/**
 * Prometheus metrics, one registry per app instance (tests build several). Request rate and latency
 * by route and status; queue depths and job outcomes by queue, ingestion outcomes, DB pool usage and
 * event-loop delay are read at scrape time.
 */
export default fp(async (fastify) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'quire_', eventLoopMonitoringPrecision: 20 })

  const requests = new Histogram({
    name: 'quire_http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })

  const jobOutcomes = new Counter({
    name: 'quire_job_outcomes_total',
    help: 'Jobs finished by this process, by queue, job and outcome',
    labelNames: ['queue', 'job', 'outcome'] as const,
    registers: [registry],
  })

  const queueDepth = new Gauge({
    name: 'quire_queue_jobs',
    help: 'Jobs per queue and state (BullMQ counts, shared by every process)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect () {
      await Promise.all(QUEUE_NAMES.map(async (name) => {
        try {
          const counts = await fastify.queues[name].getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children')
          for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n)
        } catch { /* Redis down: keep the last values */ }
      }))
    },
  })

  const ingestionStatus = new Gauge({
    name: 'quire_ingestions',
    help: 'Ingestions by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect () {
      try {
        const [rows] = await fastify.dbPool.query('SELECT status, COUNT(*) AS n FROM ingestions GROUP BY status') as unknown as [Array<{ status: string, n: number }>]
        this.reset()
        for (const r of rows) this.set({ status: r.status }, Number(r.n))
      } catch { /* DB down: keep the last values */ }
    },
  })

  const pool = poolStats(fastify.dbPool)
  const dbPool = new Gauge({
    name: 'quire_db_pool_connections',
    help: 'MySQL pool connections by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const s = pool()
      this.set({ state: 'total' }, s.total)
      this.set({ state: 'idle' }, s.idle)
      this.set({ state: 'busy' }, s.busy)
      this.set({ state: 'queued_requests' }, s.queued)
    },
  })

  const redisEvicts = new Gauge({
    name: 'quire_redis_evicts_keys',
    help: 'Redis maxmemory-policy by name: 1 (a warning) when it is not noeviction, so queued jobs and schedules can be evicted',
    labelNames: ['policy'] as const,
    registers: [registry],
    async collect () {
      const policy = await fastify.redisPolicy()
      if (policy === null) return
      this.reset()
      this.set({ policy }, policy === 'noeviction' ? 0 : 1)
    },
  })

  const reads = new Counter({
    name: 'quire_db_list_reads_total',
    help: 'List and search reads served since start, by target (replica, primary); with DATABASE_REPLICA_URL, reads on the primary are the replica\'s fallbacks',
    labelNames: ['target'] as const,
    registers: [registry],
    collect () {
      const s = fastify.reads.stats()
      this.reset()
      this.inc({ target: 'replica' }, s.replica)
      this.inc({ target: 'primary' }, s.primary)
    },
  })
  const positions = new Counter({
    name: 'quire_db_replica_positions_total',
    help: 'Positions the replica\'s lists waited for, by source: published by the writers (Redis), or asked of the primary (none published)',
    labelNames: ['source'] as const,
    registers: [registry],
    collect () {
      const s = fastify.reads.stats()
      this.reset()
      this.inc({ source: 'published' }, s.published)
      this.inc({ source: 'primary' }, s.positions)
    },
  })
  const replicaState = new Gauge({
    name: 'quire_db_replica_state',
    help: 'The read replica\'s state as this process sees it (1 for the current one): ok, lagging, down, unsupported; absent without DATABASE_REPLICA_URL',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const s = fastify.reads.state()
      this.reset()
      if (s !== null) for (const k of ['ok', 'lagging', 'down', 'unsupported']) this.set({ state: k }, k === s ? 1 : 0)
    },
  })

  fastify.decorate('metrics', { registry, jobOutcomes, listReads: reads, replicaPositions: positions, gauges: [queueDepth, ingestionStatus, dbPool, redisEvicts, replicaState] })

  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? (request.is404 ? 'not_found' : 'unknown')
    requests.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics', dependencies: ['db', 'redis', 'queue'] })
