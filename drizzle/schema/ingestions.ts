import { mysqlTable, varchar, json, int, datetime, bigint, text, index, uniqueIndex } from 'drizzle-orm/mysql-core'
import { exactText, idColumn } from './columns.js'

const ts = (name: string) => datetime(name, { mode: 'date', fsp: 3 })

export const ingestions = mysqlTable('ingestions', {
  id: idColumn('id').primaryKey(),
  documentId: idColumn('document_id').notNull(),
  status: varchar('status', { length: 16 }).notNull(),
  /** upsert: index this version's content; delete: remove the document from the index */
  operation: varchar('operation', { length: 8 }).notNull().default('upsert'),
  /** the document's content version this ingestion sends (null on rows older than versions) */
  documentVersion: int('document_version'),
  /** the bulk re-run that created this row, if any */
  batchId: idColumn('batch_id'),
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
  index('ingestions_batch_idx').on(t.batchId, t.status),
])

/** A bulk re-run by filter (POST /ingestions with `filter`), expanded page by page in the background. */
export const ingestionBatches = mysqlTable('ingestion_batches', {
  id: idColumn('id').primaryKey(),
  requestedBy: idColumn('requested_by').notNull(),
  filter: json('filter').$type<Record<string, unknown>>().notNull(),
  pipeline: varchar('pipeline', { length: 100 }).notNull(),
  options: json('options').$type<Record<string, unknown>>().notNull(),
  /** expanding | done | failed */
  status: varchar('status', { length: 16 }).notNull(),
  matched: int('matched').notNull().default(0),
  /** the last document id expanded (keyset cursor of the expansion) */
  cursor: idColumn('cursor'),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
  finishedAt: ts('finished_at'),
})

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
