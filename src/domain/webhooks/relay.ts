import { and, asc, eq, gt, inArray, isNull, lt, ne, notExists, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/mysql2'
import { schema, sqlTransaction, type Db, type DbOrTx } from '../../db.js'
import { newId } from '../../lib/ids.js'
import { ingestions, webhookAttempts, webhookDeliveries, webhookEvents } from '../../../drizzle/schema/index.js'
import { dtosOf } from '../ingestions/store.js'
import { subscribes, type EventRow } from './store.js'

export interface RelayDeps {
  db: Db
  retryMs: number
  clock: () => Date
  /** adds batch jobs (src/jobs/catalogue.ts `webhook-batch`), one round trip; resolves to their job ids */
  enqueueBatches: (batches: Batch[]) => Promise<string[]>
  /** which of these BullMQ job ids still exist in Redis */
  jobsExist: (jobIds: string[]) => Promise<Set<string>>
  /** the sweep for lost jobs: at most every WEBHOOK_SWEEP_INTERVAL_MS per process, from where it stopped */
  sweep: { intervalMs: number, last: number, cursor: string }
  /** a relay run is under way in this process */
  running?: boolean
}

export interface Batch { endpointId: string, deliveryIds: string[], window: number }

/**
 * The relay: outbox rows (src/domain/webhooks/outbox.ts) become one delivery per subscribed
 * endpoint, in one transaction with marking them relayed (rows locked with SKIP LOCKED, so
 * several workers share the work); then the deliveries not queued yet get their job. A Redis
 * outage leaves them `enqueued = false` and the next run queues them: nothing is lost.
 */
export async function relayOutbox (deps: RelayDeps, limit = 500): Promise<{ events: number, deliveries: number }> {
  // Plain SQL on one connection (no query builder): the relay writes every delivery row, in bulk.
  return await sqlTransaction(deps.db, async (conn) => {
    const [events] = await conn.query('SELECT id, type, subject, seq, hydrate, created_at AS createdAt FROM webhook_events WHERE relayed_at IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED', [limit]) as unknown as [RelayedEvent[]]
    if (events.length === 0) return { events: 0, deliveries: 0 }
    const now = deps.clock()
    if (events.some(e => e.hydrate?.startsWith('ingestion:') === true)) await hydrate(drizzle(conn, { schema, mode: 'default' }) as unknown as DbOrTx, events)
    const [endpoints] = await conn.query("SELECT id, events, created_at AS createdAt FROM webhook_endpoints WHERE status <> 'disabled'") as unknown as [Array<{ id: string, events: string[] | string, createdAt: Date }>]
    for (const w of endpoints) if (typeof w.events === 'string') w.events = JSON.parse(w.events) as string[] // MariaDB: JSON is text
    const until = new Date(now.getTime() + deps.retryMs)
    const rows = events.flatMap(e => endpoints
      .filter(w => subscribes(w as { events: string[] }, e.type) && w.createdAt <= e.createdAt)
      .map(w => [newId(), w.id, e.id, e.subject, e.seq, 'pending', 0, false, now, now, until]))
    for (let i = 0; i < rows.length; i += 1000) {
      await conn.query('INSERT IGNORE INTO webhook_deliveries (id, endpoint_id, event_id, subject, seq, status, attempts, enqueued, created_at, updated_at, retry_until) VALUES ?', [rows.slice(i, i + 1000)])
    }
    await conn.query('UPDATE webhook_events SET relayed_at = ? WHERE id IN (?)', [now, events.map(e => e.id)])
    return { events: events.length, deliveries: rows.length }
  })
}

type RelayedEvent = Pick<EventRow, 'id' | 'type' | 'subject' | 'seq' | 'hydrate' | 'createdAt'>

/**
 * Completes the data of ingestion events: the ingestion as the API returns it, under what its
 * transition wrote (status, result, error, finish time), frozen into the row.
 */
async function hydrate (tx: DbOrTx, events: RelayedEvent[]): Promise<void> {
  const pending = events.filter(e => e.hydrate?.startsWith('ingestion:') === true)
  const ids = [...new Set(pending.map(e => e.hydrate!.slice('ingestion:'.length)))]
  const dtos = new Map((await dtosOf(tx, await tx.select().from(ingestions).where(inArray(ingestions.id, ids)))).map(d => [d.id, d]))
  const known = new Map((await tx.select({ id: webhookEvents.id, data: webhookEvents.data }).from(webhookEvents).where(inArray(webhookEvents.id, pending.map(e => e.id)))).map(r => [r.id, r.data]))
  for (const e of pending) {
    const dto = dtos.get(e.hydrate!.slice('ingestion:'.length))
    const data = { ...(dto ?? { id: e.hydrate!.slice('ingestion:'.length) }), ...known.get(e.id) }
    e.hydrate = null
    await tx.update(webhookEvents).set({ data, hydrate: null }).where(eq(webhookEvents.id, e.id))
  }
}

/**
 * Queues the deliveries not queued yet (new ones, and those a Redis outage or a lost job left
 * behind): one `webhook-batch` job per endpoint for up to `limit` of them, in id order. The rows
 * are locked (SKIP LOCKED) until they are marked, so two relays do not queue them twice.
 */
export async function queueDeliveries (deps: RelayDeps, limit = 500): Promise<number> {
  return await deps.db.transaction(async (tx) => {
    const rows = await tx.select({ id: webhookDeliveries.id, endpointId: webhookDeliveries.endpointId, retryUntil: webhookDeliveries.retryUntil }).from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.enqueued, false), eq(webhookDeliveries.status, 'pending'))).orderBy(asc(webhookDeliveries.id)).limit(limit).for('update', { skipLocked: true })
    if (rows.length === 0) return 0
    const byEndpoint = new Map<string, typeof rows>()
    for (const r of rows) byEndpoint.set(r.endpointId, [...(byEndpoint.get(r.endpointId) ?? []), r])
    const batches = [...byEndpoint].map(([endpointId, rs]) => ({ endpointId, deliveryIds: rs.map(r => r.id), window: rs[0]!.retryUntil.getTime() }))
    const jobIds = await deps.enqueueBatches(batches)
    for (const [i, b] of batches.entries()) {
      await tx.update(webhookDeliveries).set({ enqueued: true, jobId: jobIds[i] ?? null }).where(inArray(webhookDeliveries.id, b.deliveryIds))
    }
    return rows.length
  })
}

/** The id of the job carrying a delivery: its batch's, or its own. */
export const jobIdOf = (d: { id: string, jobId: string | null, retryUntil: Date }): string => d.jobId ?? `${d.id}.${d.retryUntil.getTime()}`

/**
 * Pending deliveries whose job is gone (a Redis that lost its data: a restart without
 * persistence, a failover, an eviction) would wait forever: the sweep looks their jobs up
 * (`limit` deliveries per page, from where the last sweep stopped) and hands the lost ones back to
 * the relay (`enqueued = false`, guarded on the job read), which queues them again.
 */
export async function sweepLostJobs (deps: RelayDeps, limit = 1000, pages = 5): Promise<number> {
  const s = deps.sweep
  let lost = 0
  for (let page = 0; page < pages; page++) {
    const rows = await deps.db.select({ id: webhookDeliveries.id, jobId: webhookDeliveries.jobId, retryUntil: webhookDeliveries.retryUntil }).from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.status, 'pending'), eq(webhookDeliveries.enqueued, true), gt(webhookDeliveries.id, s.cursor))).orderBy(asc(webhookDeliveries.id)).limit(limit)
    s.cursor = rows.length < limit ? '' : rows.at(-1)!.id
    const ids = [...new Set(rows.map(jobIdOf))]
    const alive = ids.length === 0 ? new Set<string>() : await deps.jobsExist(ids)
    const gone = new Map<string | null, string[]>()
    for (const r of rows) if (!alive.has(jobIdOf(r))) gone.set(r.jobId, [...(gone.get(r.jobId) ?? []), r.id])
    for (const [jobId, dids] of gone) {
      const [res] = await deps.db.update(webhookDeliveries).set({ enqueued: false, jobId: null })
        .where(and(inArray(webhookDeliveries.id, dids), eq(webhookDeliveries.status, 'pending'), jobId === null ? isNull(webhookDeliveries.jobId) : eq(webhookDeliveries.jobId, jobId)))
      lost += res.affectedRows
    }
    if (s.cursor === '') break
  }
  return lost
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
