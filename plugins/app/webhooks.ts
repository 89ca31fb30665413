import fp from 'fastify-plugin'
import { secretBox } from '../../src/domain/webhooks/secrets.js'
import { webhookService } from '../../src/domain/webhooks/service.js'
import type { WebhookService } from '../../src/domain/webhooks/service.js'
import type { RelayDeps } from '../../src/domain/webhooks/relay.js'
import type { BatchDeps, EnqueueBatch, EnqueueOwn } from '../../src/domain/webhooks/batch.js'
import { endpointGate } from '../../src/domain/webhooks/gate.js'
import { bulkJobs } from '../../src/jobs/enqueue.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Outbound webhooks (docs/webhooks.md): the endpoints' service (routes), the relay's and the deliveries' deps (worker). */
    webhooks: { service: WebhookService, relay: RelayDeps, deliver: BatchDeps }
  }
}

export default fp(async (fastify) => {
  const config = fastify.config
  const box = secretBox(config.JWT_SECRET)
  const clock = () => new Date()
  const retryMs = Math.round(config.WEBHOOK_RETRY_HOURS * 3600_000)
  const queue = fastify.queues.webhooks
  // Fail fast when Redis is down: the delivery stays unqueued in MySQL and the relay queues it later.
  const enqueueDelivery = async (d: { id: string, endpointId: string, retryUntil: Date }): Promise<void> => {
    await fastify.enqueue('webhook-deliver', { deliveryId: d.id, endpointId: d.endpointId, window: d.retryUntil.getTime() }, { timeoutMs: 2000 })
  }
  const enqueueOwn: EnqueueOwn = async (items) => {
    const jobs = bulkJobs('webhook-deliver', items.map(d => ({ deliveryId: d.id, endpointId: d.endpointId, window: d.retryUntil.getTime() })), config)
    await queue.addBulk(jobs.map((j, i) => ({ ...j, opts: { ...j.opts, delay: items[i]!.delayMs } })))
  }
  const enqueueBatches: RelayDeps['enqueueBatches'] = async (batches) => {
    const jobs = bulkJobs('webhook-batch', batches, config)
    await queue.addBulk(jobs)
    return jobs.map(j => String(j.opts.jobId))
  }
  const enqueueBatch: EnqueueBatch = async (b, delayMs) => {
    const [job] = bulkJobs('webhook-batch', [b], config)
    await queue.add(job!.name, job!.data, { ...job!.opts, delay: delayMs })
    return String(job!.opts.jobId)
  }
  const jobsExist: RelayDeps['jobsExist'] = async (ids) => {
    // The jobs' hashes (`<prefix>:webhooks:<id>`), on the queues' Redis; one round trip.
    const res = await ids.reduce((p, id) => p.exists(queue.toKey(id)), fastify.redis.pipeline()).exec()
    return new Set(ids.filter((_id, i) => res?.[i]?.[1] === 1))
  }
  fastify.decorate('webhooks', {
    service: webhookService({ db: fastify.db, box, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, retryMs, enqueueDelivery, clock, log: fastify.log, audit: fastify.recordAudit }),
    relay: { db: fastify.db, retryMs, clock, enqueueBatches, jobsExist, sweep: { intervalMs: config.WEBHOOK_SWEEP_INTERVAL_MS, last: 0, cursor: '' } },
    deliver: { db: fastify.db, redis: fastify.redis, key: fastify.redisKey, box, config, clock, audit: fastify.recordAudit, gate: endpointGate(), enqueueOwn, enqueueBatch, published: fastify.reads.afterWrite },
  })
}, { name: 'webhooks', dependencies: ['config', 'db', 'redis', 'audit', 'queue'] })
