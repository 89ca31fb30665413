import { mysqlTable, varchar, json, int, datetime, char, bigint, text, index, primaryKey } from 'drizzle-orm/mysql-core'
import { exactText, idColumn } from './columns.js'

const ts = (name: string) => datetime(name, { mode: 'date', fsp: 3 })

export const documents = mysqlTable('documents', {
  /** UUIDv7: ordering by id is ordering by creation time */
  id: idColumn('id').primaryKey(),
  ownerId: idColumn('owner_id').notNull(),
  title: varchar('title', { length: 500 }).notNull(),
  description: text('description'),
  filename: varchar('filename', { length: 255 }).notNull(),
  mimeType: varchar('mime_type', { length: 255 }).notNull(),
  size: bigint('size', { mode: 'number', unsigned: true }).notNull(),
  sha256: char('sha256', { length: 64 }).notNull(),
  status: varchar('status', { length: 16 }).notNull(),
  visibility: varchar('visibility', { length: 16 }).notNull().default('private'),
  tags: json('tags').$type<string[]>().notNull(),
  storageKey: varchar('storage_key', { length: 512 }).notNull(),
  thumbnailKey: varchar('thumbnail_key', { length: 512 }),
  thumbnailWidth: int('thumbnail_width'),
  thumbnailHeight: int('thumbnail_height'),
  metadata: json('metadata').$type<Record<string, unknown>>().notNull(),
  error: text('error'),
  version: int('version').notNull().default(1),
  /** The content version number (document_versions.number) whose bytes, size, sha256 and type the row shows. */
  currentVersion: int('current_version').notNull().default(1),
  /** Where the ingestion backend's index stands for this document (see docs/ingestion.md). */
  indexState: varchar('index_state', { length: 16 }).notNull().default('none'),
  indexVersion: int('index_version'),
  indexChunks: int('index_chunks'),
  indexPipeline: varchar('index_pipeline', { length: 100 }),
  indexPipelineVersion: varchar('index_pipeline_version', { length: 100 }),
  indexedAt: ts('indexed_at'),
  indexError: text('index_error'),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
  deletedAt: ts('deleted_at'),
}, (t) => [
  index('documents_owner_idx').on(t.ownerId, t.deletedAt, t.id),
  // owner_id last: the listing's "others' internal documents" branch filters on it without reading rows
  index('documents_visibility_idx').on(t.visibility, t.deletedAt, t.id, t.ownerId),
  index('documents_deleted_idx').on(t.deletedAt, t.id),
  index('documents_index_state_idx').on(t.indexState, t.deletedAt, t.id, t.ownerId),
  // the scan sweep: documents left in `scanning`
  index('documents_status_idx').on(t.status, t.updatedAt),
])

/** Every stored content version of a document; the document row mirrors its current one. */
export const documentVersions = mysqlTable('document_versions', {
  documentId: idColumn('document_id').notNull(),
  number: int('number').notNull(),
  storageKey: varchar('storage_key', { length: 512 }).notNull(),
  size: bigint('size', { mode: 'number', unsigned: true }).notNull(),
  sha256: char('sha256', { length: 64 }).notNull(),
  mimeType: varchar('mime_type', { length: 255 }).notNull(),
  filename: varchar('filename', { length: 255 }).notNull(),
  createdAt: ts('created_at').notNull(),
  createdBy: idColumn('created_by').notNull(),
  /** the malware scan of this version's bytes: null (not scanned: no CLAMD_URL), scanning, clean, infected, skipped (SCAN_FAIL_OPEN) */
  scanStatus: varchar('scan_status', { length: 16 }),
}, (t) => [
  primaryKey({ columns: [t.documentId, t.number] }),
  // the scan sweep: versions left in `scanning`
  index('document_versions_scan_idx').on(t.scanStatus, t.createdAt),
])

export const documentTags = mysqlTable('document_tags', {
  documentId: idColumn('document_id').notNull(),
  tag: exactText('tag', 64).notNull(),
}, (t) => [
  primaryKey({ columns: [t.documentId, t.tag] }),
  index('document_tags_tag_idx').on(t.tag, t.documentId),
])

export const documentShares = mysqlTable('document_shares', {
  documentId: idColumn('document_id').notNull(),
  userId: idColumn('user_id').notNull(),
  access: varchar('access', { length: 8 }).notNull(),
  createdAt: ts('created_at').notNull(),
}, (t) => [
  primaryKey({ columns: [t.documentId, t.userId] }),
  index('document_shares_user_idx').on(t.userId, t.documentId),
])

/** Pre-signed uploads waiting for their bytes and the complete call. */
export const uploads = mysqlTable('uploads', {
  id: idColumn('id').primaryKey(),
  userId: idColumn('user_id').notNull(),
  filename: varchar('filename', { length: 255 }).notNull(),
  mimeType: varchar('mime_type', { length: 255 }).notNull(),
  size: bigint('size', { mode: 'number', unsigned: true }).notNull(),
  sha256: char('sha256', { length: 64 }),
  storageKey: varchar('storage_key', { length: 512 }).notNull(),
  /** Set for an upload of a new version of this document (POST /documents/:id/versions/uploads); null for a new document. */
  documentId: idColumn('document_id'),
  status: varchar('status', { length: 16 }).notNull().default('pending'),
  expiresAt: ts('expires_at').notNull(),
  createdAt: ts('created_at').notNull(),
}, (t) => [
  index('uploads_status_expires_idx').on(t.status, t.expiresAt),
])
