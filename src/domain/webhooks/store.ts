import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm'
import { sqlAtomic, type Db, type DbOrTx, type Statement } from '../../db.js'
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from '../../../drizzle/schema/index.js'
import { isId, newId } from '../../lib/ids.js'
import { decodeIdCursor, pageOf } from '../../lib/pagination.js'
import type { DeliveryDto, WebhookDto } from '../../schemas/webhooks.js'
import type { AttemptResult } from './send.js'

/** Rows of the webhook tables and their API shapes; the SQL of endpoints, deliveries and attempts. */
export type EndpointRow = typeof webhookEndpoints.$inferSelect
export type DeliveryRow = typeof webhookDeliveries.$inferSelect
export type EventRow = typeof webhookEvents.$inferSelect

const iso = (d: Date | null): string | null => d?.toISOString() ?? null

export function toWebhook (r: EndpointRow): WebhookDto {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    events: r.events,
    status: r.status,
    statusReason: r.statusReason,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    lastSuccessAt: iso(r.lastSuccessAt),
  }
}

export const subscribes = (endpoint: Pick<EndpointRow, 'events'>, type: string): boolean => endpoint.events.includes('*') || endpoint.events.includes(type)

export async function findEndpoint (db: DbOrTx, id: string): Promise<EndpointRow | null> {
  if (!isId(id)) return null
  const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id)).limit(1)
  return row ?? null
}

export async function listEndpoints (db: Db, q: { limit: number, cursor?: string }): Promise<{ items: WebhookDto[], nextCursor: string | null }> {
  const where = q.cursor !== undefined ? lt(webhookEndpoints.id, decodeIdCursor(q.cursor)) : undefined
  const rows = await db.select().from(webhookEndpoints).where(where).orderBy(desc(webhookEndpoints.id)).limit(q.limit + 1)
  const page = pageOf(rows, q.limit, r => r.id)
  return { items: page.items.map(toWebhook), nextCursor: page.nextCursor }
}

/** A delivery of `eventId` to `endpointId`, pending (its job is added by the caller or the relay). */
export function newDelivery (endpointId: string, event: Pick<EventRow, 'id' | 'subject' | 'seq'>, now: Date, retryMs: number): typeof webhookDeliveries.$inferInsert {
  return { id: newId(), endpointId, eventId: event.id, subject: event.subject, seq: event.seq, status: 'pending', createdAt: now, updatedAt: now, retryUntil: new Date(now.getTime() + retryMs) }
}

/** A delivery with its event and endpoint (null when one of them is gone). */
export async function loadDelivery (db: Db, id: string): Promise<{ delivery: DeliveryRow, event: EventRow, endpoint: EndpointRow | null } | null> {
  const [row] = await db.select({ d: webhookDeliveries, e: webhookEvents, w: webhookEndpoints }).from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .leftJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
    .where(eq(webhookDeliveries.id, id)).limit(1)
  return row === undefined ? null : { delivery: row.d, event: row.e, endpoint: row.w }
}

/**
 * True while an earlier event of the same subject is not settled for this endpoint: its delivery
 * is pending, or it is not even relayed yet. Per-subject (per-document) order for each receiver.
 */
export async function earlierPending (db: Db, d: Pick<DeliveryRow, 'endpointId' | 'subject' | 'seq'>): Promise<boolean> {
  if (d.subject === null || d.seq === null) return false
  const [rows] = await db.$client.execute(
    `SELECT 1 FROM webhook_deliveries WHERE endpoint_id = ? AND subject = ? AND seq < ? AND status = 'pending'
     UNION ALL SELECT 1 FROM webhook_events WHERE subject = ? AND seq < ? AND relayed_at IS NULL LIMIT 1`,
    [d.endpointId, d.subject, d.seq, d.subject, d.seq]) as unknown as [unknown[]]
  return rows.length > 0
}

/**
 * Logs one attempt and counts it on its delivery, in one transaction and one round trip;
 * `status` settles it (delivered, failed) or keeps it pending. `succeededAt`: the endpoint that
 * answered 2xx (its last success; a `failing` one is `active` again).
 */
export async function recordAttempt (db: Db, deliveryId: string, r: AttemptResult, status: 'pending' | 'delivered' | 'failed', now: Date, succeededAt?: string): Promise<void> {
  const error = r.error?.slice(0, 1000) ?? null
  const statements: Statement[] = [
    ['INSERT INTO webhook_attempts (delivery_id, at, status_code, duration_ms, error, response) VALUES (?, ?, ?, ?, ?, ?)', [deliveryId, now, r.statusCode, r.durationMs, error, r.response?.slice(0, 1024) ?? null]],
    ['UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status_code = ?, last_error = ?, updated_at = ?, delivered_at = IF(? = \'delivered\', ?, delivered_at) WHERE id = ?', [status, r.statusCode, error, now, status, now, deliveryId]],
  ]
  if (succeededAt !== undefined) {
    statements.push(["UPDATE webhook_endpoints SET status_reason = IF(status = 'failing', NULL, status_reason), status = IF(status = 'failing', 'active', status), last_success_at = ? WHERE id = ?", [now, succeededAt]])
  }
  await sqlAtomic(db, statements)
}

export async function settleDelivery (db: Db, id: string, status: 'failed', error: string, now: Date): Promise<void> {
  await db.update(webhookDeliveries).set({ status, lastError: error, updatedAt: now }).where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending')))
}

/** An endpoint's deliveries, newest first, each with all its attempts. */
export async function listDeliveries (db: Db, endpointId: string, q: { limit: number, cursor?: string, status?: string }): Promise<{ items: DeliveryDto[], nextCursor: string | null }> {
  const where: Array<SQL | undefined> = [eq(webhookDeliveries.endpointId, endpointId)]
  if (q.cursor !== undefined) where.push(lt(webhookDeliveries.id, decodeIdCursor(q.cursor)))
  if (q.status !== undefined) where.push(eq(webhookDeliveries.status, q.status))
  const rows = await db.select({ d: webhookDeliveries, type: webhookEvents.type }).from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .where(and(...where)).orderBy(desc(webhookDeliveries.id)).limit(q.limit + 1)
  const page = pageOf(rows, q.limit, r => r.d.id)
  const ids = page.items.map(r => r.d.id)
  const attempts = ids.length === 0 ? [] : await db.select().from(webhookAttempts).where(inArray(webhookAttempts.deliveryId, ids)).orderBy(webhookAttempts.id)
  const byDelivery = new Map<string, DeliveryDto['attempts']>(ids.map(id => [id, []]))
  for (const a of attempts) {
    byDelivery.get(a.deliveryId)?.push({ at: a.at.toISOString(), statusCode: a.statusCode, durationMs: a.durationMs, error: a.error, response: a.response })
  }
  return {
    items: page.items.map(({ d, type }) => ({
      id: d.id,
      eventId: d.eventId,
      type,
      status: d.status,
      attempts: byDelivery.get(d.id) ?? [],
      createdAt: d.createdAt.toISOString(),
      deliveredAt: iso(d.deliveredAt),
      retryUntil: d.retryUntil.toISOString(),
    })),
    nextCursor: page.nextCursor,
  }
}

/** Deliveries of one endpoint with their events (a batch job's), in the order given. */
export async function loadBatch (db: Db, endpointId: string, ids: string[]): Promise<Array<{ delivery: DeliveryRow, event: EventRow }>> {
  if (ids.length === 0) return []
  const rows = await db.select({ d: webhookDeliveries, e: webhookEvents }).from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .where(and(eq(webhookDeliveries.endpointId, endpointId), inArray(webhookDeliveries.id, ids)))
  const byId = new Map(rows.map(r => [r.d.id, { delivery: r.d, event: r.e }]))
  return ids.flatMap(id => byId.get(id) ?? [])
}

/**
 * Per subject, the lowest sequence number still unsettled for this endpoint outside `exclude`:
 * a pending delivery, or an event not relayed yet. A batch sends a subject's events below it only.
 */
export async function earliestUnsettled (db: Db, endpointId: string, subjects: string[], exclude: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (subjects.length === 0) return out
  const marks = (n: number): string => Array.from({ length: n }, () => '?').join(',')
  const [rows] = await db.$client.query(
    `SELECT subject, MIN(seq) AS seq FROM webhook_deliveries WHERE endpoint_id = ? AND subject IN (${marks(subjects.length)}) AND status = 'pending'${exclude.length > 0 ? ` AND id NOT IN (${marks(exclude.length)})` : ''} GROUP BY subject
     UNION ALL SELECT subject, MIN(seq) AS seq FROM webhook_events WHERE subject IN (${marks(subjects.length)}) AND relayed_at IS NULL GROUP BY subject`,
    [endpointId, ...subjects, ...exclude, ...subjects]) as unknown as [Array<{ subject: string, seq: number | string | null }>]
  for (const r of rows) {
    if (r.seq === null) continue
    const seq = Number(r.seq)
    out.set(r.subject, Math.min(seq, out.get(r.subject) ?? Infinity))
  }
  return out
}

/** Many deliveries answered 2xx: their attempts in one multi-row INSERT, the deliveries and the endpoint's last success, one transaction. */
export async function recordDelivered (db: Db, endpointId: string, done: Array<{ id: string, result: AttemptResult, at: Date }>, now: Date): Promise<void> {
  if (done.length === 0) return
  const statements: Statement[] = [[
    `INSERT INTO webhook_attempts (delivery_id, at, status_code, duration_ms, error, response) VALUES ${done.map(() => '(?, ?, ?, ?, NULL, ?)').join(', ')}`,
    done.flatMap(d => [d.id, d.at, d.result.statusCode, d.result.durationMs, d.result.response?.slice(0, 1024) ?? null]),
  ]]
  const byCode = new Map<number | null, string[]>()
  for (const d of done) byCode.set(d.result.statusCode, [...(byCode.get(d.result.statusCode) ?? []), d.id])
  for (const [code, ids] of byCode) {
    statements.push([`UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status_code = ?, last_error = NULL, updated_at = ?, delivered_at = ? WHERE id IN (${ids.map(() => '?').join(',')}) AND status = 'pending'`, [code, now, now, ...ids]])
  }
  statements.push(["UPDATE webhook_endpoints SET status_reason = IF(status = 'failing', NULL, status_reason), status = IF(status = 'failing', 'active', status), last_success_at = ? WHERE id = ?", [now, endpointId]])
  await sqlAtomic(db, statements)
}

/** Settles pending deliveries as failed (their endpoint is disabled). */
export async function failMany (db: Db, ids: string[], error: string, now: Date): Promise<void> {
  if (ids.length === 0) return
  await db.update(webhookDeliveries).set({ status: 'failed', lastError: error, updatedAt: now }).where(and(inArray(webhookDeliveries.id, ids), eq(webhookDeliveries.status, 'pending')))
}

/** The job now carrying these deliveries: a batch job's id, or null for jobs of their own (`<id>.<retry_until ms>`). */
export async function markJobs (db: Db, ids: string[], jobId: string | null): Promise<void> {
  if (ids.length === 0) return
  await db.update(webhookDeliveries).set({ jobId }).where(inArray(webhookDeliveries.id, ids))
}
