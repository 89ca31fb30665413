/**
 * Value lists shared by the schemas (src/schemas), the domain and the database layer. This module
 * imports nothing, so any layer may import it without a cycle.
 */

export const PERMISSIONS = [
  'documents:read', 'documents:create', 'documents:update', 'documents:delete', 'documents:share', 'documents:manage',
  'ingestions:read', 'ingestions:trigger', 'ingestions:manage',
  'users:manage', 'jobs:manage', 'audit:read', 'webhooks:manage',
] as const
export type Permission = typeof PERMISSIONS[number]

export const ROLES = ['viewer', 'editor', 'admin'] as const
export type Role = typeof ROLES[number]

/**
 * `scanning`: waiting for the malware scan (CLAMD_URL), `infected`: the scan found something (never
 * served or ingested); `processing`: the thumbnail is being made. Only `ready`, `processing` and
 * `failed` (a thumbnail failure) have content that may be downloaded or ingested.
 */
export const DOCUMENT_STATUSES = ['uploading', 'scanning', 'infected', 'processing', 'ready', 'failed'] as const
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

/** What outbound webhooks announce (docs/webhooks.md); `document.version_added` once document versions exist. */
export const WEBHOOK_EVENT_TYPES = [
  'document.created', 'document.updated', 'document.version_added', 'document.trashed', 'document.restored', 'document.deleted', 'document.shared',
  'ingestion.succeeded', 'ingestion.failed', 'ingestion.cancelled',
  'user.created', 'user.deleted',
] as const
export type WebhookEventType = typeof WEBHOOK_EVENT_TYPES[number]

export const WEBHOOK_STATUSES = ['active', 'failing', 'disabled'] as const
export type WebhookStatus = typeof WEBHOOK_STATUSES[number]

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const
export type WebhookDeliveryStatus = typeof WEBHOOK_DELIVERY_STATUSES[number]
