import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { documentVersions } from '../../../drizzle/schema/index.js'
import type { DocumentRow } from '../../domain/document-access.js'
import type { IngestionRow } from '../../domain/ingestions/store.js'
import { callbackUrl } from '../../domain/ingestion-signing.js'

/** The bytes an upsert sends: the document's current ones, or those of the older version it was queued for. */
interface Content { version: number, storageKey: string, filename: string, mimeType: string, size: number, sha256: string }

export class VersionGone extends Error {}

async function contentOf (app: FastifyInstance, row: IngestionRow, doc: DocumentRow): Promise<Content> {
  const version = row.documentVersion ?? doc.currentVersion
  if (version === doc.currentVersion) return { version, storageKey: doc.storageKey, filename: doc.filename, mimeType: doc.mimeType, size: doc.size, sha256: doc.sha256 }
  const [v] = await app.db.select().from(documentVersions).where(and(eq(documentVersions.documentId, doc.id), eq(documentVersions.number, version)))
  if (v === undefined) throw new VersionGone(`version ${version} of the document is no longer stored (pruned); ingest the current version instead`)
  // An older version's own scan verdict (the dispatch job checked the document's, which follows its current version).
  if (v.scanStatus === 'infected') throw new VersionGone(`version ${version} of the document was found infected; it is never ingested`)
  if (v.scanStatus === 'scanning') throw new VersionGone(`version ${version} of the document is being scanned for malware; ingest it again once it is clean`)
  return { version, storageKey: v.storageKey, filename: v.filename, mimeType: v.mimeType, size: v.size, sha256: v.sha256 }
}

/**
 * The contract's body (docs/ingestion-backend.md): `operation` and `document.version`; an upsert
 * carries a fresh short-lived download URL of that version's bytes, a delete only the document's
 * id and version (its row may be gone: a purge).
 */
export async function payloadFor (app: FastifyInstance, row: IngestionRow, doc: DocumentRow | null): Promise<string> {
  const common = { ingestionId: row.id, operation: row.operation, pipeline: row.pipeline, options: row.options ?? {}, callbackUrl: callbackUrl(app.config.PUBLIC_URL, row.id) }
  if (row.operation === 'delete' || doc === null) {
    return JSON.stringify({ ...common, operation: 'delete', document: { id: row.documentId, version: row.documentVersion ?? doc?.currentVersion ?? 1 } })
  }
  const c = await contentOf(app, row, doc)
  const ttl = app.config.DOWNLOAD_URL_TTL
  const downloadUrl = await app.storage.presignGet(c.storageKey, { expiresIn: ttl, filename: c.filename, contentType: c.mimeType, audience: 'internal' })
  return JSON.stringify({
    ...common,
    document: {
      id: doc.id,
      version: c.version,
      title: doc.title,
      filename: c.filename,
      mimeType: c.mimeType,
      size: c.size,
      sha256: c.sha256,
      downloadUrl,
      downloadUrlExpiresAt: new Date(Date.now() + ttl * 1000).toISOString(),
    },
  })
}
