import { randomUUID } from 'node:crypto'
import { and, eq, sql } from 'drizzle-orm'
import type { RedisClient as Redis } from '../../redis.js'
import { Webhook } from 'standardwebhooks'
import type { Db } from '../../db.js'
import { webhookEndpoints } from '../../../drizzle/schema/index.js'
import type { RecordAudit } from '../audit.js'
import type { SecretBox } from './secrets.js'
import type { EndpointGate } from './gate.js'
import { postWebhook, type AttemptResult } from './send.js'
import type { Checked } from './destination.js'
import { earlierPending, loadDelivery, recordAttempt, settleDelivery, type DeliveryRow, type EndpointRow, type EventRow } from './store.js'

export interface DeliverDeps {
  db: Db
  redis: Redis
  key: (...parts: string[]) => string
  box: SecretBox
  config: {
    WEBHOOK_ALLOW_PRIVATE: boolean
    WEBHOOK_TIMEOUT_MS: number
    WEBHOOK_BACKOFF_MS: number
    WEBHOOK_BACKOFF_MAX_MS: number
    WEBHOOK_ENDPOINT_CONCURRENCY: number
    WEBHOOK_CONCURRENCY: number
  }
  clock: () => Date
  audit: RecordAudit
  gate: EndpointGate
  /** With a read replica, the router's `afterWrite`: the primary's position is published before an event goes out. */
  published?: () => Promise<void>
}

/** What became of one run: settled, or to run again after `delayMs` (not an attempt when waiting or busy). */
export type Outcome =
  | { outcome: 'delivered' | 'failed' | 'skipped', statusCode?: number | null }
  | { outcome: 'retry' | 'wait' | 'busy', delayMs: number }

/** The body receivers get: Standard Webhooks' `{type, timestamp, data}` plus the event id; `data.sequence` orders a subject's events. */
export function payloadOf (e: Pick<EventRow, 'id' | 'type' | 'data' | 'seq' | 'createdAt'>): string {
  return JSON.stringify({ id: e.id, type: e.type, timestamp: e.createdAt.toISOString(), data: e.seq !== null ? { ...e.data, sequence: e.seq } : e.data })
}

/** Exponential, with jitter: attempt n waits between half and all of min(base * 2^(n-1), max). */
export function backoffMs (attempt: number, base: number, max: number): number {
  const full = Math.min(base * 2 ** Math.min(attempt - 1, 40), max)
  return Math.round(full / 2 + Math.random() * full / 2)
}

export const ORDER_WAIT_MS = 500
const BUSY_WAIT_MS = 250

/**
 * One run of a delivery (src/jobs/webhook-deliver.ts): in order (an earlier event of the same
 * document still pending for this endpoint: wait), within the endpoint's concurrency (else:
 * busy), one signed attempt, logged; 2xx delivered, 410 disables the endpoint, anything else is
 * retried with backoff until the delivery's retry window ends. A delivery given up on an endpoint
 * that answered no 2xx in that window marks it `failing` (audited).
 */
export async function runDelivery (deps: DeliverDeps, deliveryId: string, endpointId: string): Promise<Outcome> {
  const { WEBHOOK_ENDPOINT_CONCURRENCY: limit, WEBHOOK_CONCURRENCY: slots } = deps.config
  const leave = await deps.gate.enter(endpointId, limit, Math.max(1, Math.floor(slots / 4)))
  if (leave === null) return busy()
  try {
    return await attemptDelivery(deps, deliveryId)
  } finally {
    leave()
  }
}

export const busy = (): Outcome => ({ outcome: 'busy', delayMs: BUSY_WAIT_MS + Math.round(Math.random() * BUSY_WAIT_MS) })

async function attemptDelivery (deps: DeliverDeps, deliveryId: string): Promise<Outcome> {
  const loaded = await loadDelivery(deps.db, deliveryId)
  if (loaded === null || loaded.delivery.status !== 'pending') return { outcome: 'skipped' }
  const { delivery, event, endpoint } = loaded
  if (endpoint === null) return { outcome: 'skipped' }
  if (endpoint.status === 'disabled') {
    await settleDelivery(deps.db, delivery.id, 'failed', 'the endpoint is disabled', deps.clock())
    return { outcome: 'failed' }
  }
  if (await earlierPending(deps.db, delivery)) return { outcome: 'wait', delayMs: ORDER_WAIT_MS }
  const [slot] = await acquireSlots(deps, endpoint.id, 1)
  if (slot === undefined) return busy()
  let result: AttemptResult
  try {
    result = await sendEvent(deps, senderOf(deps, endpoint), event)
  } finally {
    await slot()
  }
  return await afterAttempt(deps, delivery, endpoint, result)
}

/** What every attempt to one endpoint needs: its URL, its secret opened (null: it cannot be), and optionally its checked destination. */
export interface Sender { url: string, webhook: Webhook | null, checked?: Checked }

export function senderOf (deps: Pick<DeliverDeps, 'box'>, endpoint: Pick<EndpointRow, 'url' | 'secret'>): Sender {
  const secret = openSecret(deps.box, endpoint.secret)
  return { url: endpoint.url, webhook: secret === null ? null : new Webhook(secret) }
}

/** One signed POST of the event (Standard Webhooks headers, signed now). */
export async function sendEvent (deps: Pick<DeliverDeps, 'clock' | 'config' | 'published'>, to: Sender, event: EventRow): Promise<AttemptResult> {
  if (to.webhook === null) return { statusCode: null, durationMs: 0, error: 'the signing secret cannot be decrypted (JWT_SECRET changed?): rotate it with PATCH /webhooks/:id {rotateSecret: true}', response: null }
  // The event's write may not be published yet (its writer is still running): a receiver that lists
  // on the event must find it (src/db/replica.ts). Best effort, as for a request's answer.
  await deps.published?.().catch(() => { /* the lists then wait for an older position: as before */ })
  const body = payloadOf(event)
  const sentAt = deps.clock()
  return await postWebhook(to.url, body, {
    'webhook-id': event.id,
    'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
    'webhook-signature': to.webhook.sign(event.id, sentAt, body),
  }, { timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS, allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE, userAgent: 'Quire-Webhooks/1', checked: to.checked })
}

export const isSuccess = (code: number | null): boolean => code !== null && code >= 200 && code < 300

/**
 * Logs an attempt and decides what comes next: 2xx delivered, 410 disables the endpoint, anything
 * else is retried with backoff until the delivery's retry window ends (then failed, and the
 * endpoint `failing` if it answered no 2xx in that window).
 */
export async function afterAttempt (deps: DeliverDeps, delivery: DeliveryRow, endpoint: EndpointRow, result: AttemptResult): Promise<Outcome> {
  const now = deps.clock()
  const code = result.statusCode
  if (isSuccess(code)) {
    await recordAttempt(deps.db, delivery.id, result, 'delivered', now, endpoint.id)
    return { outcome: 'delivered', statusCode: code }
  }
  if (code === 410) {
    await recordAttempt(deps.db, delivery.id, result, 'failed', now)
    await markEndpoint(deps, endpoint.id, 'disabled', `answered 410 Gone at ${now.toISOString()}`, 'webhook.disable')
    return { outcome: 'failed', statusCode: code }
  }
  const delayMs = backoffMs(delivery.attempts + 1, deps.config.WEBHOOK_BACKOFF_MS, deps.config.WEBHOOK_BACKOFF_MAX_MS)
  if (now.getTime() + delayMs <= delivery.retryUntil.getTime()) {
    await recordAttempt(deps.db, delivery.id, result, 'pending', now)
    return { outcome: 'retry', delayMs }
  }
  await recordAttempt(deps.db, delivery.id, result, 'failed', now)
  // Re-read: another delivery may have succeeded meanwhile.
  const fresh = (await loadDelivery(deps.db, delivery.id))?.endpoint ?? endpoint
  if (fresh.lastSuccessAt === null || fresh.lastSuccessAt < delivery.createdAt) {
    await markEndpoint(deps, endpoint.id, 'failing', `no 2xx answer within the retry window of delivery ${delivery.id} (${result.error ?? `status ${code}`})`.slice(0, 255), 'webhook.failing')
  }
  return { outcome: 'failed', statusCode: code }
}

function openSecret (box: SecretBox, sealed: string): string | null {
  try {
    return box.open(sealed)
  } catch {
    return null
  }
}

/** Moves an endpoint to `failing` (from active) or `disabled` (from anything else), audited once. */
async function markEndpoint (deps: DeliverDeps, id: string, status: 'failing' | 'disabled', reason: string, action: string): Promise<void> {
  const guard = status === 'failing' ? eq(webhookEndpoints.status, 'active') : sql`${webhookEndpoints.status} <> 'disabled'`
  const [res] = await deps.db.update(webhookEndpoints).set({ status, statusReason: reason, updatedAt: deps.clock() }).where(and(eq(webhookEndpoints.id, id), guard))
  if (res.affectedRows === 1) await deps.audit(null, { action, subject: `webhook:${id}`, actorId: null, payload: { reason } })
}

/**
 * Up to `wanted` slots among the endpoint's WEBHOOK_ENDPOINT_CONCURRENCY attempts in flight (all
 * workers); none when they are taken. Slots are members of a sorted set scored by start time: a
 * worker that dies holding one loses it after twice the attempt timeout. Returns their releases.
 */
export async function acquireSlots (deps: Pick<DeliverDeps, 'redis' | 'key' | 'config'>, endpointId: string, wanted: number): Promise<Array<() => Promise<void>>> {
  const key = deps.key('webhooks', 'inflight', endpointId)
  const members = Array.from({ length: Math.max(1, wanted) }, () => randomUUID())
  const now = Date.now()
  const ttl = deps.config.WEBHOOK_TIMEOUT_MS * 2 + 5000
  const res = await deps.redis.multi().zremrangebyscore(key, '-inf', now - ttl).zadd(key, ...members.flatMap(m => [now, m])).zcard(key).pexpire(key, ttl).exec()
  const inFlight = res?.[2]?.[1]
  const release = (m: string) => async (): Promise<void> => { await deps.redis.zrem(key, m).catch(() => undefined) }
  const over = typeof inFlight !== 'number' ? members.length : Math.max(0, inFlight - deps.config.WEBHOOK_ENDPOINT_CONCURRENCY)
  const dropped = members.splice(members.length - Math.min(over, members.length))
  if (dropped.length > 0) await deps.redis.zrem(key, ...dropped).catch(() => undefined)
  return members.map(release)
}
