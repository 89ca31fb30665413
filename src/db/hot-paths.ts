import type { SqlValue, Statement } from '../db.js'
import type { documents, ingestions } from '../../drizzle/schema/index.js'

/**
 * The SQL written by hand, beside drizzle, for the paths the benchmark measures (bench/ANALYSIS.md
 * says why each one is here): column lists, the raw rows mysql2 returns for them and their
 * mappers to drizzle's row types, and the document JSON that MySQL builds for the reads. Every
 * other query is drizzle. test/db/hot-paths-contract.test.ts holds each list here to the drizzle
 * schema, and the document JSON to `toDocument`, on real rows.
 */

export type DocumentRow = typeof documents.$inferSelect
export type IngestionRow = typeof ingestions.$inferSelect

/** mysql2 parses JSON columns on MySQL and on MariaDB (format=json metadata); a string is parsed here, just in case. */
const json = <T>(v: T | string): T => typeof v === 'string' ? JSON.parse(v) as T : v

// ---------------------------------------------------------------- documents

/** Every documents column, in DocumentRow order (table alias `d`). */
export const DOCUMENT_COLUMNS = 'd.id, d.owner_id, d.title, d.description, d.filename, d.mime_type, d.size, d.sha256, d.status, d.visibility, ' +
  'd.tags, d.storage_key, d.thumbnail_key, d.thumbnail_width, d.thumbnail_height, d.metadata, d.error, d.version, d.created_at, d.updated_at, d.deleted_at, ' +
  'd.current_version, d.index_state, d.index_version, d.index_chunks, d.index_pipeline, d.index_pipeline_version, d.indexed_at, d.index_error'

/** A documents row as mysql2 returns it for DOCUMENT_COLUMNS (timezone Z: DATETIMEs are UTC Dates). */
export interface RawDocumentRow {
  id: string
  owner_id: string
  title: string
  description: string | null
  filename: string
  mime_type: string
  size: number | string
  sha256: string
  status: string
  visibility: string
  tags: string[] | string
  storage_key: string
  thumbnail_key: string | null
  thumbnail_width: number | null
  thumbnail_height: number | null
  metadata: Record<string, unknown> | string
  error: string | null
  version: number
  created_at: Date
  updated_at: Date
  deleted_at: Date | null
  current_version: number
  index_state: string
  index_version: number | null
  index_chunks: number | null
  index_pipeline: string | null
  index_pipeline_version: string | null
  indexed_at: Date | null
  index_error: string | null
}

/** The same DocumentRow drizzle's `select().from(documents)` would give, without the query builder. */
export function toDocumentRow (r: RawDocumentRow): DocumentRow {
  return {
    id: r.id,
    ownerId: r.owner_id,
    title: r.title,
    description: r.description,
    filename: r.filename,
    mimeType: r.mime_type,
    size: Number(r.size),
    sha256: r.sha256,
    status: r.status,
    visibility: r.visibility,
    tags: json(r.tags),
    storageKey: r.storage_key,
    thumbnailKey: r.thumbnail_key,
    thumbnailWidth: r.thumbnail_width,
    thumbnailHeight: r.thumbnail_height,
    metadata: json(r.metadata),
    error: r.error,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
    currentVersion: r.current_version,
    indexState: r.index_state,
    indexVersion: r.index_version,
    indexChunks: r.index_chunks,
    indexPipeline: r.index_pipeline,
    indexPipelineVersion: r.index_pipeline_version,
    indexedAt: r.indexed_at,
    indexError: r.index_error,
  }
}

/** A DATETIME(3) (UTC) as `Date.toISOString()` writes it, as a JSON string: "YYYY-MM-DDTHH:MM:SS.mmmZ". */
const isoSql = (col: string): string => `CONCAT('"', REPLACE(${col}, ' ', 'T'), 'Z"')`
const quoted = (col: string): string => `JSON_QUOTE(${col})`

/**
 * A document as its JSON text, built by MySQL/MariaDB (the listing's rows, GET /documents/:id):
 * the members `toDocument` and the `Document` response schema give, in their order. Strings go
 * through JSON_QUOTE; the JSON columns are embedded as stored (valid JSON on both servers);
 * numbers as digits. CONCAT, not JSON_OBJECT (bench/ANALYSIS.md, "Documents list"). `error`, the
 * one optional member, comes as its own column (see withError).
 */
export const DOCUMENT_JSON_MEMBERS: ReadonlyArray<readonly [name: string, sql: string]> = [
  ['id', quoted('d.id')],
  ['title', quoted('d.title')],
  ['description', `IFNULL(${quoted('d.description')}, 'null')`],
  ['filename', quoted('d.filename')],
  ['mimeType', quoted('d.mime_type')],
  ['size', 'd.size'],
  ['sha256', quoted('d.sha256')],
  ['status', quoted('d.status')],
  ['visibility', quoted('d.visibility')],
  ['tags', 'd.tags'],
  ['ownerId', quoted('d.owner_id')],
  ['version', 'd.version'],
  ['thumbnail', "IF(d.thumbnail_key IS NOT NULL AND d.thumbnail_width IS NOT NULL AND d.thumbnail_height IS NOT NULL, CONCAT('{\"width\":', d.thumbnail_width, ',\"height\":', d.thumbnail_height, '}'), 'null')"],
  ['metadata', 'd.metadata'],
  ['createdAt', isoSql('d.created_at')],
  ['updatedAt', isoSql('d.updated_at')],
  ['deletedAt', `IF(d.deleted_at IS NULL, 'null', ${isoSql('d.deleted_at')})`],
  ['index', `CONCAT('{"state":', ${quoted('d.index_state')}, ',"version":', IFNULL(d.index_version, 'null'), ',"chunks":', IFNULL(d.index_chunks, 'null'), ` +
    `',"pipeline":', IFNULL(${quoted('d.index_pipeline')}, 'null'), ',"pipelineVersion":', IFNULL(${quoted('d.index_pipeline_version')}, 'null'), ` +
    `',"indexedAt":', IF(d.indexed_at IS NULL, 'null', ${isoSql('d.indexed_at')}), ',"lastError":', IFNULL(${quoted('d.index_error')}, 'null'), '}')`],
]

/** The document of alias `d` as JSON text (`json`) and the error a failed one carries (`error`). */
export const DOCUMENT_JSON_COLUMNS = `CONCAT(${DOCUMENT_JSON_MEMBERS.map(([name, sql], i) => `'${i === 0 ? '{' : ','}"${name}":', ${sql}`).join(', ')}, '}') AS json, ` +
  "IF(d.status IN ('failed', 'infected'), d.error, NULL) AS error"

export interface DocumentJsonRow { json: string, error: string | null }

/** A failed document's error is the one optional member: spliced in before the closing brace. */
export const withError = (r: DocumentJsonRow): string => r.error === null ? r.json : `${r.json.slice(0, -1)},"error":${JSON.stringify(r.error)}}`

// ---------------------------------------------------------------- ingestions

export const INGESTION_COLUMNS = ['id', 'document_id', 'status', 'operation', 'document_version', 'batch_id', 'pipeline', 'options', 'attempts', 'last_error', 'result', 'requested_by',
  'idempotency_key', 'request_id', 'created_at', 'updated_at', 'started_at', 'finished_at', 'enqueued_at'] as const

/** An ingestions row as mysql2 returns it (JSON columns parsed by mysql2, as drizzle gets them). */
export interface RawIngestionRow {
  id: string
  document_id: string
  status: string
  operation: string
  document_version: number | null
  batch_id: string | null
  pipeline: string
  options: Record<string, unknown>
  attempts: number
  last_error: string | null
  result: unknown
  requested_by: string
  idempotency_key: string | null
  request_id: string | null
  created_at: Date
  updated_at: Date
  started_at: Date | null
  finished_at: Date | null
  enqueued_at: Date | null
}

export function toIngestionRow (r: RawIngestionRow): IngestionRow {
  return {
    id: r.id,
    documentId: r.document_id,
    status: r.status,
    operation: r.operation,
    documentVersion: r.document_version,
    batchId: r.batch_id,
    pipeline: r.pipeline,
    options: r.options,
    attempts: r.attempts,
    lastError: r.last_error,
    result: r.result,
    requestedBy: r.requested_by,
    idempotencyKey: r.idempotency_key,
    requestId: r.request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    enqueuedAt: r.enqueued_at,
  }
}

export const FIND_INGESTION_SQL = `SELECT ${INGESTION_COLUMNS.join(', ')} FROM ingestions WHERE id = ? LIMIT 1`
/** The ingestion and its document in one round trip (run with `nestTables`: rows nested by alias). */
export const FIND_INGESTION_WITH_DOCUMENT_SQL = `SELECT ${INGESTION_COLUMNS.map(c => `i.${c}`).join(', ')}, ${DOCUMENT_COLUMNS} ` +
  'FROM ingestions i LEFT JOIN documents d ON d.id = i.document_id WHERE i.id = ? LIMIT 1'

/** The columns the trigger writes (its plain and its access-checked INSERT). */
export const INGESTION_INSERT_COLUMNS = 'id, document_id, status, pipeline, options, attempts, requested_by, idempotency_key, request_id, created_at, updated_at, enqueued_at, document_version'

export interface NewEvent { type: string, message: string, data?: Record<string, unknown> }
export const EVENT_COLUMNS = 'ingestion_id, at, type, message, data'
export const INSERT_EVENT_SQL = `INSERT INTO ingestion_events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)`

/** One event's values, in EVENT_COLUMNS order. */
export const eventValues = (ingestionId: string, at: Date, e: NewEvent): SqlValue[] =>
  [ingestionId, at, e.type, e.message.slice(0, 2000), e.data !== undefined ? JSON.stringify(e.data) : null]

/**
 * The INSERT of `events` as a statement for `sqlAtomic`, written only when the session variable
 * `@quire_changed` is 1 (set from the preceding UPDATE's row count in the same batch).
 */
export function guardedEventsInsert (ingestionId: string, events: readonly NewEvent[], at: Date): Statement {
  const select = 'SELECT ?, ?, ?, ?, ? FROM DUAL WHERE @quire_changed = 1'
  return [`INSERT INTO ingestion_events (${EVENT_COLUMNS}) ${events.map(() => select).join(' UNION ALL ')}`,
    events.flatMap(e => eventValues(ingestionId, at, e))]
}

// ---------------------------------------------------------------- audit

export const AUDIT_COLUMNS = 'at, actor_id, action, subject, ip, user_agent, request_id, api_key_id, payload'
export const AUDIT_INSERT_SQL = `INSERT INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
/** The audit row of a batch, written only when `@quire_changed` is 1 (see guardedEventsInsert). */
export const GUARDED_AUDIT_SQL = `INSERT INTO audit_events (${AUDIT_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL WHERE @quire_changed = 1`
