/**
 * Value lists shared by the schemas (src/schemas), the domain and the database layer. This module
 * imports nothing, so any layer may import it without a cycle.
 */

export const PERMISSIONS = [
  'documents:read', 'documents:create', 'documents:update', 'documents:delete', 'documents:share', 'documents:manage',
  'ingestions:read', 'ingestions:trigger', 'ingestions:manage',
  'users:manage', 'jobs:manage', 'audit:read',
] as const
export type Permission = typeof PERMISSIONS[number]

export const ROLES = ['viewer', 'editor', 'admin'] as const
export type Role = typeof ROLES[number]

export const DOCUMENT_STATUSES = ['uploading', 'processing', 'ready', 'failed'] as const
export type DocumentStatus = typeof DOCUMENT_STATUSES[number]

export const VISIBILITIES = ['private', 'internal'] as const
export type Visibility = typeof VISIBILITIES[number]

export const SHARE_ACCESS = ['read', 'write'] as const
export type ShareAccess = typeof SHARE_ACCESS[number]

export const INGESTION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded'] as const
export type IngestionStatus = typeof INGESTION_STATUSES[number]
/** The statuses an ingestion can still leave (its job may run). */
export const OPEN_INGESTION_STATUSES = ['queued', 'running'] as const satisfies readonly IngestionStatus[]

/** What an ingestion does to the backend's index: replace the document's content with one version, or remove the document. */
export const INGESTION_OPERATIONS = ['upsert', 'delete'] as const
export type IngestionOperation = typeof INGESTION_OPERATIONS[number]

/** Where the backend's index stands for a document (docs/ingestion.md, "Index states"). */
export const INDEX_STATES = ['none', 'pending', 'indexed', 'stale', 'failed', 'removing'] as const
export type IndexState = typeof INDEX_STATES[number]

export const PASSWORD_MIN = 8
export const PASSWORD_MAX = 128

export const MAX_TAGS = 20
export const MAX_TAG_LENGTH = 64
