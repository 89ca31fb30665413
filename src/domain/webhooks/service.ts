import { and, eq, inArray } from 'drizzle-orm'
import type { Db } from '../../db.js'
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from '../../../drizzle/schema/index.js'
import { AppError, badRequest, conflict, notFound } from '../../lib/errors.js'
import { newId } from '../../lib/ids.js'
import type { AuditContext, RecordAudit } from '../audit.js'
import type { WebhookDto } from '../../schemas/webhooks.js'
import { checkDestination } from './destination.js'
import { newSigningSecret, type SecretBox } from './secrets.js'
import { findEndpoint, listDeliveries, listEndpoints, newDelivery, toWebhook } from './store.js'

export interface WebhookServiceDeps {
  db: Db
  box: SecretBox
  allowPrivate: boolean
  /** WEBHOOK_RETRY_HOURS in ms */
  retryMs: number
  /** adds the delivery's job (one per retry window: a redelivery's job is another); may throw when Redis is down */
  enqueueDelivery: (d: { id: string, endpointId: string, retryUntil: Date }) => Promise<void>
  clock: () => Date
  log: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  audit: RecordAudit
}

export interface NewWebhook { url: string, events: string[], description?: string }
export interface WebhookChanges { url?: string, events?: string[], description?: string | null, status?: 'active' | 'disabled', rotateSecret?: boolean }

/**
 * Webhook endpoints (the routes gate `webhooks:manage`): created with a signing secret shown
 * once, changed, deleted, pinged; their deliveries listed and redelivered. Every change audited.
 */
export function webhookService (deps: WebhookServiceDeps) {
  const { db, audit } = deps
  const subject = (id: string): string => `webhook:${id}`

  /** The URL, checked like every delivery will be (src/domain/webhooks/destination.ts): 400 webhook_url_refused. */
  async function checkedUrl (raw: string): Promise<string> {
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw badRequest('url is not a valid URL', 'validation_failed')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badRequest('url must be http or https', 'validation_failed')
    if (url.username !== '' || url.password !== '') throw badRequest('url must not carry credentials; the signature authenticates Quire to the receiver', 'validation_failed')
    const checked = await checkDestination(url, deps.allowPrivate)
    if (!checked.ok) throw new AppError(400, 'webhook_url_refused', `This URL is refused: ${checked.reason}. Use a public address (private ones only with WEBHOOK_ALLOW_PRIVATE=true)`)
    return url.toString()
  }

  async function create (ctx: AuditContext, input: NewWebhook): Promise<WebhookDto & { secret: string }> {
    const url = await checkedUrl(input.url)
    const secret = newSigningSecret()
    const now = deps.clock()
    const row = { id: newId(), url, description: input.description ?? null, events: [...new Set(input.events)], secret: deps.box.seal(secret), status: 'active', statusReason: null, createdBy: ctx.actorId, createdAt: now, updatedAt: now, lastSuccessAt: null }
    await db.insert(webhookEndpoints).values(row)
    await audit(ctx, { action: 'webhook.create', subject: subject(row.id), payload: { url, events: row.events } })
    return { ...toWebhook(row), secret }
  }

  async function get (id: string): Promise<WebhookDto> {
    const row = await findEndpoint(db, id)
    if (row === null) throw notFound('Webhook')
    return toWebhook(row)
  }

  async function update (ctx: AuditContext, id: string, changes: WebhookChanges): Promise<WebhookDto & { secret?: string }> {
    const row = await findEndpoint(db, id)
    if (row === null) throw notFound('Webhook')
    const next = { ...row, updatedAt: deps.clock() }
    if (changes.url !== undefined) next.url = await checkedUrl(changes.url)
    if (changes.events !== undefined) next.events = [...new Set(changes.events)]
    if (changes.description !== undefined) next.description = changes.description
    if (changes.status !== undefined) {
      next.status = changes.status
      next.statusReason = changes.status === 'disabled' ? 'disabled by an admin' : null
    }
    const secret = changes.rotateSecret === true ? newSigningSecret() : undefined
    if (secret !== undefined) next.secret = deps.box.seal(secret)
    await db.update(webhookEndpoints).set(next).where(eq(webhookEndpoints.id, row.id))
    const { rotateSecret, ...fields } = changes
    await audit(ctx, { action: 'webhook.update', subject: subject(row.id), payload: { fields: Object.keys(fields), secretRotated: rotateSecret === true, status: next.status } })
    return { ...toWebhook(next), ...(secret !== undefined ? { secret } : {}) }
  }

  /** Deletes the endpoint and its delivery log; queued attempts find it gone and stop. */
  async function remove (ctx: AuditContext, id: string): Promise<void> {
    const row = await findEndpoint(db, id)
    if (row === null) throw notFound('Webhook')
    await db.transaction(async (tx) => {
      await tx.delete(webhookAttempts).where(inArray(webhookAttempts.deliveryId, tx.select({ id: webhookDeliveries.id }).from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, row.id))))
      await tx.delete(webhookDeliveries).where(eq(webhookDeliveries.endpointId, row.id))
      await tx.delete(webhookEndpoints).where(eq(webhookEndpoints.id, row.id))
    })
    await audit(ctx, { action: 'webhook.delete', subject: subject(row.id), payload: { url: row.url } })
  }

  /**
   * Adds the job of a delivery written `enqueued = true` (so the relay, which queues the rows that
   * are not, leaves it alone: both queueing it was a double send). When Redis is down the row is
   * handed to the relay (`enqueued = false`), which queues it once Redis answers.
   */
  async function enqueue (d: { id: string, endpointId: string, retryUntil: Date }): Promise<void> {
    try {
      await deps.enqueueDelivery(d)
    } catch (err) {
      deps.log.warn({ err, deliveryId: d.id }, 'webhook delivery not queued yet; the relay queues it once Redis answers')
      // If even that fails, the lost-job sweep finds the job missing and hands the row over.
      await db.update(webhookDeliveries).set({ enqueued: false }).where(and(eq(webhookDeliveries.id, d.id), eq(webhookDeliveries.status, 'pending')))
        .catch((e: unknown) => deps.log.error({ err: e, deliveryId: d.id }, 'webhook delivery left for the lost-job sweep'))
    }
  }

  /** Sends a `webhook.ping` event to this endpoint only, whatever events it subscribes to (not when disabled). */
  async function ping (ctx: AuditContext, id: string): Promise<{ deliveryId: string, eventId: string, status: string }> {
    const row = await findEndpoint(db, id)
    if (row === null) throw notFound('Webhook')
    const now = deps.clock()
    const event = { id: newId(), type: 'webhook.ping', subject: null, seq: null, data: { webhookId: row.id, url: row.url }, hydrate: null, createdAt: now, relayedAt: now }
    const delivery = { ...newDelivery(row.id, event, now, deps.retryMs), enqueued: true }
    await db.transaction(async (tx) => {
      await tx.insert(webhookEvents).values(event)
      await tx.insert(webhookDeliveries).values(delivery)
    })
    await enqueue({ id: delivery.id!, endpointId: row.id, retryUntil: delivery.retryUntil })
    await audit(ctx, { action: 'webhook.test', subject: subject(row.id), payload: { deliveryId: delivery.id } })
    return { deliveryId: delivery.id, eventId: event.id, status: 'pending' }
  }

  async function deliveries (id: string, q: { limit: number, cursor?: string, status?: string }) {
    const row = await findEndpoint(db, id)
    if (row === null) throw notFound('Webhook')
    return await listDeliveries(db, row.id, q)
  }

  /** Sends a settled delivery again (same webhook-id), with a new retry window. 409 while it is still pending. */
  async function redeliver (ctx: AuditContext, id: string, deliveryId: string): Promise<{ deliveryId: string, eventId: string, status: string }> {
    const row = await findEndpoint(db, id)
    if (row === null) throw notFound('Webhook')
    const [d] = await db.select().from(webhookDeliveries).where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.endpointId, row.id))).limit(1)
    if (d === undefined) throw notFound('Delivery')
    const pending = () => conflict('This delivery is still being attempted; redeliver it once it is delivered or failed', 'delivery_pending')
    if (d.status === 'pending') throw pending()
    const now = deps.clock()
    const retryUntil = new Date(now.getTime() + deps.retryMs)
    // Guarded on the status read: of two redeliveries at once, one wins.
    const [res] = await db.update(webhookDeliveries).set({ status: 'pending', enqueued: true, jobId: null, updatedAt: now, retryUntil })
      .where(and(eq(webhookDeliveries.id, d.id), eq(webhookDeliveries.status, d.status)))
    if (res.affectedRows !== 1) throw pending()
    await enqueue({ id: d.id, endpointId: row.id, retryUntil })
    await audit(ctx, { action: 'webhook.redeliver', subject: subject(row.id), payload: { deliveryId: d.id, eventId: d.eventId } })
    return { deliveryId: d.id, eventId: d.eventId, status: 'pending' }
  }

  const list = async (q: { limit: number, cursor?: string }) => await listEndpoints(db, q)

  return { create, list, get, update, remove, ping, deliveries, redeliver }
}

export type WebhookService = ReturnType<typeof webhookService>
