import { mysqlTable, varchar, json, int, datetime, bigint, boolean, index, uniqueIndex } from 'drizzle-orm/mysql-core'
import { idColumn, exactText } from './columns.js'

const ts = (name: string) => datetime(name, { mode: 'date', fsp: 3 })

/** A receiver of outbound webhooks (docs/webhooks.md). The signing secret is stored encrypted. */
export const webhookEndpoints = mysqlTable('webhook_endpoints', {
  id: idColumn('id').primaryKey(),
  url: varchar('url', { length: 2048 }).notNull(),
  description: varchar('description', { length: 500 }),
  events: json('events').$type<string[]>().notNull(),
  secret: varchar('secret', { length: 255 }).notNull(),
  /** active | disabled (by an admin, or a 410 answer) | failing (a delivery gave up with no 2xx in its window) */
  status: varchar('status', { length: 16 }).notNull(),
  statusReason: varchar('status_reason', { length: 255 }),
  createdBy: idColumn('created_by'),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
  lastSuccessAt: ts('last_success_at'),
})

/**
 * The outbox: one row per event, written in the transaction of the change it describes. The relay
 * (src/jobs/webhook-relay.ts) fans it out to webhook_deliveries and sets `relayed_at`.
 */
export const webhookEvents = mysqlTable('webhook_events', {
  id: idColumn('id').primaryKey(),
  type: varchar('type', { length: 64 }).notNull(),
  /** `document:<id>` or `user:<id>`: the stream `seq` counts in (per-document order) */
  subject: exactText('subject', 80),
  seq: bigint('seq', { mode: 'number', unsigned: true }),
  data: json('data').$type<Record<string, unknown>>().notNull(),
  /** set while `data` still has to be completed from this resource (`ingestion:<id>`) by the relay */
  hydrate: exactText('hydrate', 80),
  createdAt: ts('created_at').notNull(),
  relayedAt: ts('relayed_at'),
}, (t) => [
  index('webhook_events_relay_idx').on(t.relayedAt, t.id),
  index('webhook_events_subject_idx').on(t.subject, t.seq),
])

/** The per-subject counters behind `seq`. */
export const webhookSequences = mysqlTable('webhook_sequences', {
  subject: exactText('subject', 80).primaryKey(),
  seq: bigint('seq', { mode: 'number', unsigned: true }).notNull(),
})

/** One event for one endpoint: pending until delivered (2xx) or given up (failed). */
export const webhookDeliveries = mysqlTable('webhook_deliveries', {
  id: idColumn('id').primaryKey(),
  endpointId: idColumn('endpoint_id').notNull(),
  eventId: idColumn('event_id').notNull(),
  subject: exactText('subject', 80),
  seq: bigint('seq', { mode: 'number', unsigned: true }),
  status: varchar('status', { length: 16 }).notNull(),
  attempts: int('attempts').notNull().default(0),
  /** false until its BullMQ job was added (the relay adds it again while false) */
  enqueued: boolean('enqueued').notNull().default(false),
  /** the BullMQ job that carries it: a batch job's id, or null for its own job (`<id>.<retry_until ms>`); the sweep re-adds it when the job is gone */
  jobId: exactText('job_id', 120),
  lastStatusCode: int('last_status_code'),
  lastError: varchar('last_error', { length: 1000 }),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
  /** retried until then (WEBHOOK_RETRY_HOURS after it was created or redelivered), then given up */
  retryUntil: ts('retry_until').notNull(),
  deliveredAt: ts('delivered_at'),
}, (t) => [
  uniqueIndex('webhook_deliveries_event_uq').on(t.endpointId, t.eventId),
  index('webhook_deliveries_list_idx').on(t.endpointId, t.id),
  index('webhook_deliveries_order_idx').on(t.endpointId, t.subject, t.seq),
  index('webhook_deliveries_enqueue_idx').on(t.enqueued, t.id),
  index('webhook_deliveries_status_idx').on(t.status, t.id),
])

/** Every HTTP attempt of a delivery. */
export const webhookAttempts = mysqlTable('webhook_attempts', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  deliveryId: idColumn('delivery_id').notNull(),
  at: ts('at').notNull(),
  statusCode: int('status_code'),
  durationMs: int('duration_ms').notNull(),
  error: varchar('error', { length: 1000 }),
  /** the first 1 KiB of the answer's body */
  response: varchar('response', { length: 1024 }),
}, (t) => [
  index('webhook_attempts_delivery_idx').on(t.deliveryId, t.id),
])
