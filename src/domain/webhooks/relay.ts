import { and, asc, eq, inArray, isNull, lt, ne, notExists, sql } from 'drizzle-orm'
import type { Db } from '../../db.js'
import { ingestions, webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from '../../../drizzle/schema/index.js'
import { dtosOf } from '../ingestions/store.js'
import { newDelivery, subscribes, type EventRow } from './store.js'

export interface RelayDeps {
  db: Db
  retryMs: number
  clock: () => Date
  /** adds the delivery's BullMQ job (src/jobs/catalogue.ts `webhook-deliver`) */
  enqueueDelivery: (d: { id: string, endpointId: string, retryUntil: Date }) => Promise<void>
}

/**
 * The relay: outbox rows (src/domain/webhooks/outbox.ts) become one delivery per subscribed
 * endpoint, in one transaction with marking them relayed (rows locked with SKIP LOCKED, so
 * several workers share the work); then the deliveries not queued yet get their job. A Redis
 * outage leaves them `enqueued = false` and the next run queues them: nothing is lost.
 */
export async function relayOutbox (deps: RelayDeps, limit = 500): Promise<{ events: number, deliveries: number }> {
  const { db } = deps
  return await db.transaction(async (tx) => {
    const events = await tx.select().from(webhookEvents).where(isNull(webhookEvents.relayedAt)).orderBy(asc(webhookEvents.id)).limit(limit).for('update', { skipLocked: true })
    if (events.length === 0) return { events: 0, deliveries: 0 }
    const now = deps.clock()
    await hydrate(tx, events)
    const endpoints = await tx.select({ id: webhookEndpoints.id, events: webhookEndpoints.events, createdAt: webhookEndpoints.createdAt })
      .from(webhookEndpoints).where(ne(webhookEndpoints.status, 'disabled'))
    const rows = events.flatMap(e => endpoints
      .filter(w => subscribes(w, e.type) && w.createdAt <= e.createdAt)
      .map(w => newDelivery(w.id, e, now, deps.retryMs)))
    for (let i = 0; i < rows.length; i += 500) await tx.insert(webhookDeliveries).ignore().values(rows.slice(i, i + 500))
    await tx.update(webhookEvents).set({ relayedAt: now }).where(inArray(webhookEvents.id, events.map(e => e.id)))
    return { events: events.length, deliveries: rows.length }
  })
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

/**
 * Completes the data of ingestion events: the ingestion as the API returns it, under what its
 * transition wrote (status, result, error, finish time), frozen into the row.
 */
async function hydrate (tx: Tx, events: EventRow[]): Promise<void> {
  const pending = events.filter(e => e.hydrate?.startsWith('ingestion:') === true)
  if (pending.length === 0) return
  const ids = [...new Set(pending.map(e => e.hydrate!.slice('ingestion:'.length)))]
  const dtos = new Map((await dtosOf(tx, await tx.select().from(ingestions).where(inArray(ingestions.id, ids)))).map(d => [d.id, d]))
  for (const e of pending) {
    const dto = dtos.get(e.hydrate!.slice('ingestion:'.length))
    e.data = { ...(dto ?? { id: e.hydrate!.slice('ingestion:'.length) }), ...e.data }
    e.hydrate = null
    await tx.update(webhookEvents).set({ data: e.data, hydrate: null }).where(eq(webhookEvents.id, e.id))
  }
}

/** Adds the jobs of deliveries not queued yet (new ones, and those a Redis outage left behind). */
export async function queueDeliveries (deps: RelayDeps, limit = 1000): Promise<number> {
  const rows = await deps.db.select({ id: webhookDeliveries.id, endpointId: webhookDeliveries.endpointId, retryUntil: webhookDeliveries.retryUntil }).from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.enqueued, false), eq(webhookDeliveries.status, 'pending'))).orderBy(asc(webhookDeliveries.id)).limit(limit)
  if (rows.length === 0) return 0
  await Promise.all(rows.map(async r => await deps.enqueueDelivery(r)))
  await deps.db.update(webhookDeliveries).set({ enqueued: true }).where(inArray(webhookDeliveries.id, rows.map(r => r.id)))
  return rows.length
}

/**
 * The delivery log's retention: settled deliveries last changed before `before`, their attempts,
 * and relayed events before `before` that no delivery refers to any more. Pending deliveries and
 * their events stay; the per-subject counters stay (sequence numbers never restart).
 */
export async function purgeWebhookLog (db: Db, before: Date, batch = 1000): Promise<{ deliveries: number, events: number }> {
  let deliveries = 0
  let events = 0
  for (;;) {
    const old = await db.select({ id: webhookDeliveries.id }).from(webhookDeliveries)
      .where(and(ne(webhookDeliveries.status, 'pending'), lt(webhookDeliveries.updatedAt, before))).limit(batch)
    if (old.length === 0) break
    const ids = old.map(d => d.id)
    await db.transaction(async (tx) => {
      await tx.delete(webhookAttempts).where(inArray(webhookAttempts.deliveryId, ids))
      await tx.delete(webhookDeliveries).where(inArray(webhookDeliveries.id, ids))
    })
    deliveries += ids.length
    if (old.length < batch) break
  }
  for (;;) {
    const [res] = await db.delete(webhookEvents).where(and(lt(webhookEvents.relayedAt, before),
      notExists(db.select({ one: sql`1` }).from(webhookDeliveries).where(eq(webhookDeliveries.eventId, webhookEvents.id))))).limit(batch)
    events += res.affectedRows
    if (res.affectedRows < batch) break
  }
  return { deliveries, events }
}
