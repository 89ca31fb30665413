import fp from 'fastify-plugin'
import { secretBox } from '../../src/domain/webhooks/secrets.js'
import { webhookService, type WebhookService } from '../../src/domain/webhooks/service.js'
import type { RelayDeps } from '../../src/domain/webhooks/relay.js'
import type { DeliverDeps } from '../../src/domain/webhooks/deliver.js'
import { endpointGate } from '../../src/domain/webhooks/gate.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Outbound webhooks (docs/webhooks.md): the endpoints' service (routes), the relay's and the deliveries' deps (worker). */
    webhooks: { service: WebhookService, relay: RelayDeps, deliver: DeliverDeps }
  }
}

export default fp(async (fastify) => {
  const config = fastify.config
  const box = secretBox(config.JWT_SECRET)
  const clock = () => new Date()
  const retryMs = Math.round(config.WEBHOOK_RETRY_HOURS * 3600_000)
  // Fail fast when Redis is down: the delivery stays unqueued in MySQL and the relay queues it later.
  const enqueueDelivery = async (d: { id: string, endpointId: string, retryUntil: Date }): Promise<void> => {
    await fastify.enqueue('webhook-deliver', { deliveryId: d.id, endpointId: d.endpointId, window: d.retryUntil.getTime() }, { timeoutMs: 2000 })
  }
  fastify.decorate('webhooks', {
    service: webhookService({ db: fastify.db, box, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, retryMs, enqueueDelivery, clock, log: fastify.log, audit: fastify.recordAudit }),
    relay: { db: fastify.db, retryMs, clock, enqueueDelivery },
    deliver: { db: fastify.db, redis: fastify.redis, key: fastify.redisKey, box, config, clock, audit: fastify.recordAudit, gate: endpointGate() },
  })
}, { name: 'webhooks', dependencies: ['config', 'db', 'redis', 'audit', 'queue'] })
