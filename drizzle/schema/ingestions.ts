import { mysqlTable, varchar, json, int, datetime, bigint, text, index, uniqueIndex } from 'drizzle-orm/mysql-core'
import { exactText, idColumn } from './columns.js'

const ts = (name: string) => datetime(name, { mode: 'date', fsp: 3 })

export const ingestions = mysqlTable('ingestions', {
  id: idColumn('id').primaryKey(),
  documentId: idColumn('document_id').notNull(),
  status: varchar('status', { length: 16 }).notNull(),
  pipeline: varchar('pipeline', { length: 100 }).notNull(),
  options: json('options').$type<Record<string, unknown>>().notNull(),
  attempts: int('attempts').notNull().default(0),
  lastError: text('last_error'),
  result: json('result').$type<unknown>(),
  requestedBy: idColumn('requested_by').notNull(),
  idempotencyKey: exactText('idempotency_key', 200),
  requestId: varchar('request_id', { length: 128 }),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
  startedAt: ts('started_at'),
  finishedAt: ts('finished_at'),
  /** when a job was last enqueued for this row; the recovery sweep re-enqueues stale queued rows */
  enqueuedAt: ts('enqueued_at'),
}, (t) => [
  uniqueIndex('ingestions_idempotency_uq').on(t.requestedBy, t.idempotencyKey),
  index('ingestions_document_idx').on(t.documentId, t.id),
  index('ingestions_status_idx').on(t.status, t.id),
])

export const ingestionEvents = mysqlTable('ingestion_events', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  ingestionId: idColumn('ingestion_id').notNull(),
  at: ts('at').notNull(),
  type: varchar('type', { length: 32 }).notNull(),
  message: text('message').notNull(),
  data: json('data').$type<Record<string, unknown>>(),
}, (t) => [
  index('ingestion_events_ingestion_idx').on(t.ingestionId, t.id),
])
