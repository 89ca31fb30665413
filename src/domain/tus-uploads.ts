import { and, eq } from 'drizzle-orm'
import { Metadata } from '@tus/utils'
import type { Actor } from '../lib/actor.js'
import type { Db } from '../db.js'
import type { Storage } from '../storage/types.js'
import type { AuditContext } from './audit.js'
import type { VersionService } from './version-service.js'
import type { QuotaService } from './quota.js'
import { PRESIGNED_RESERVATION_GRACE_MS, type Completed, type UploadLimits, type UploadService } from './upload-service.js'
import type { DocumentFieldsInput } from '../schemas/documents.js'
import { uploads } from '../../drizzle/schema/index.js'
import { checkFields, cleanFilename } from './document-create.js'
import { insertUpload, isAllowedType, payloadTooLarge, unsupportedType } from './uploads.js'
import { cancelUpload, stagingKey, uploadWriteRefusal } from './upload-staging.js'
import { AppError, badRequest, forbidden, notFound } from '../lib/errors.js'
import { isId, newId } from '../lib/ids.js'

/*
 * Resumable uploads (tus 1.0, routes/uploads/tus.ts). The protocol is @tus/server's; this is what
 * Quire adds around it. An upload is an `uploads` row like a pre-signed upload's (owner, declared
 * size, sha256, filename, type, target document, expiry) whose bytes the tus store writes to the
 * same staging key; the last PATCH ends in the same complete (uploadService.complete: move to the
 * final key, sha256 over the whole object, sniffed type, document or version, audit, scan and
 * ingestion lifecycle). Expired rows, and what the store left, go in the uploads sweep.
 */

/** The creation request's tus headers, as received. */
export interface TusCreateHeaders { uploadLength?: string, deferLength?: string, concat?: string, metadata?: string }

/** A checked creation: what the row gets, and the document fields for the complete. */
export interface TusCreation {
  id: string
  key: string
  size: number
  filename: string
  mimeType: string
  sha256: string | null
  documentId: string | null
  /** whose quota the bytes count against: the document's owner for a new version, else the uploader */
  ownerId: string
  fields: DocumentFieldsInput
}

export interface TusUploadDeps {
  db: Db
  storage: Storage
  limits: UploadLimits
  versions: Pick<VersionService, 'requireWritable'>
  uploads: Pick<UploadService, 'complete'>
  /** storage quotas (src/domain/quota.ts): the declared length is reserved under the upload's id at creation */
  quota: Pick<QuotaService, 'reserve' | 'release'>
  /** Removes what the tus store keeps for a staging key (src/storage/tus-store.ts). */
  purge: (key: string) => Promise<void>
  log: { error: (obj: object, msg: string) => void }
}

const invalid = (path: string, message: string) => new AppError(400, 'validation_failed', `Invalid Upload-Metadata: ${path} ${message}`, [{ path: `/${path}`, message }])

/** Upload-Metadata, decoded (tus: comma-separated `key base64(value)` pairs). */
export function parseMetadata (header: string | undefined): Record<string, string> {
  if (header === undefined || header.trim() === '') return {}
  let parsed: Record<string, string | null>
  try {
    parsed = Metadata.parse(header)
  } catch {
    throw new AppError(400, 'validation_failed', 'Invalid Upload-Metadata: expected comma-separated "key base64value" pairs')
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, v ?? '']))
}

/** The document fields carried by the metadata (tags: a JSON array or comma-separated). */
export function metadataFields (meta: Record<string, string>): DocumentFieldsInput {
  const fields: Record<string, unknown> = {}
  for (const name of ['title', 'description', 'visibility'] as const) {
    if (meta[name] !== undefined) fields[name] = meta[name]
  }
  const tags = meta.tags
  if (tags !== undefined) {
    if (tags.trim().startsWith('[')) {
      try {
        fields.tags = JSON.parse(tags)
      } catch {
        throw invalid('tags', 'is neither a JSON array nor a comma-separated list')
      }
    } else {
      fields.tags = tags.split(',').map(s => s.trim()).filter(s => s !== '')
    }
  }
  return checkFields(fields)
}

export function tusUploadService (deps: TusUploadDeps) {
  const { db, storage, limits } = deps

  /**
   * POST /uploads/tus: the declared length and the metadata, checked before tus sees the request.
   * `documentId` asks for a new version: documents:update and write access to it, no fields.
   */
  async function prepare (actor: Actor, h: TusCreateHeaders): Promise<TusCreation> {
    if (h.concat !== undefined) throw badRequest('Upload-Concat is not supported: send the file as one upload')
    if (h.deferLength !== undefined || h.uploadLength === undefined) {
      throw new AppError(400, 'validation_failed', 'Upload-Length is required (Upload-Defer-Length is not supported)', [{ path: '/Upload-Length', message: 'required' }])
    }
    if (!/^\d{1,16}$/.test(h.uploadLength)) throw new AppError(400, 'validation_failed', 'Upload-Length must be a non-negative integer', [{ path: '/Upload-Length', message: 'not an integer' }])
    const size = Number(h.uploadLength)
    if (size > limits.maxBytes) throw payloadTooLarge(limits.maxBytes)
    const meta = parseMetadata(h.metadata)
    const sha256 = meta.sha256?.toLowerCase() ?? null
    if (sha256 !== null && !/^[0-9a-f]{64}$/.test(sha256)) throw invalid('sha256', 'must be 64 hex digits')
    const mimeType = (meta.filetype ?? meta.type ?? 'application/octet-stream').split(';')[0]?.trim().toLowerCase() ?? ''
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(mimeType)) throw invalid('filetype', 'is not a media type')
    if (!isAllowedType(mimeType, limits.allowedTypes)) throw unsupportedType(mimeType)
    const fields = metadataFields(meta)
    let documentId: string | null = null
    let ownerId = actor.id
    if (meta.documentId !== undefined) {
      if (!actor.can('documents:update')) throw forbidden('Uploading a new version requires the documents:update permission')
      if (Object.keys(fields).length > 0) throw badRequest('A new version takes no document fields; change them with PATCH /documents/:id', 'validation_failed')
      // Ids are lower case (src/schemas/common.ts Id); metadata is not validated by a schema, so here.
      const { doc } = await deps.versions.requireWritable(actor, meta.documentId.toLowerCase())
      documentId = doc.id
      ownerId = doc.ownerId
    }
    const id = newId()
    const filename = cleanFilename(meta.filename ?? meta.name)
    return { id, key: stagingKey(id), size, filename, mimeType, sha256, documentId, ownerId, fields }
  }

  /** Records the upload when tus creates it; it expires with its URL (UPLOAD_URL_TTL). */
  async function register (actor: Actor, c: TusCreation): Promise<void> {
    const expiresAt = new Date(Date.now() + limits.urlTtl * 1000)
    // The declared length, before the row and any byte exist (413 quota_exceeded); the reservation
    // has the upload's id, as a pre-signed upload's: the complete settles it, termination, discard
    // and the uploads sweep release it. Held by the caller (capped when not the owner).
    const reservation = await deps.quota.reserve(c.ownerId, c.size, { heldBy: actor.id, id: c.id, expiresAt: new Date(expiresAt.getTime() + PRESIGNED_RESERVATION_GRACE_MS) })
    try {
      await insertUpload(db, { id: c.id, userId: actor.id, documentId: c.documentId, filename: c.filename, mimeType: c.mimeType, size: c.size, sha256: c.sha256, storageKey: c.key, expiresAt })
    } catch (err) {
      await deps.quota.release(reservation).catch((e: unknown) => deps.log.error({ err: e, uploadId: c.id }, 'could not release a quota reservation'))
      throw err
    }
  }

  /**
   * HEAD/PATCH/DELETE /uploads/tus/:id: the caller's own upload that still takes bytes; 404 for
   * anyone else's (it must not reveal it exists), 409/410 when completed, cancelled or expired.
   */
  async function requireOwn (actor: Actor, id: string): Promise<string> {
    if (!isId(id)) throw notFound('Upload')
    const [row] = await db.select({ status: uploads.status, expiresAt: uploads.expiresAt, storageKey: uploads.storageKey })
      .from(uploads).where(and(eq(uploads.id, id), eq(uploads.userId, actor.id))).limit(1)
    if (row === undefined || row.storageKey !== stagingKey(id)) throw notFound('Upload')
    const refusal = uploadWriteRefusal(row)
    if (refusal !== null) throw refusal
    return row.storageKey
  }

  const purgeQuietly = async (id: string): Promise<void> => await deps.purge(stagingKey(id))
    .catch((err: unknown) => deps.log.error({ err, uploadId: id }, 'could not remove a tus upload\'s leftovers'))

  /**
   * All bytes are in: the same complete as a pre-signed upload's, then the store's leftovers go
   * (also when the complete discarded the upload; not when it is still pending, e.g. storage was
   * unreachable: the client may PATCH again, with no bytes, to retry the complete).
   */
  async function finish (actor: Actor, ctx: AuditContext, id: string, metadata: Record<string, string | null> | undefined): Promise<Completed> {
    const meta = Object.fromEntries(Object.entries(metadata ?? {}).map(([k, v]) => [k, v ?? '']))
    try {
      const done = await deps.uploads.complete(actor, ctx, id, metadataFields(meta), undefined, 'tus')
      await purgeQuietly(id)
      return done
    } catch (err) {
      const [row] = await db.select({ status: uploads.status }).from(uploads).where(eq(uploads.id, id)).limit(1)
      if (row?.status !== 'pending') {
        await purgeQuietly(id)
      }
      throw err
    }
  }

  /** DELETE (tus termination), under the upload's lock: the row is cancelled and everything the store holds removed. */
  async function terminated (actor: Actor, id: string): Promise<void> {
    if (!await cancelUpload(db, storage, actor.id, id)) {
      // No longer pending (a PATCH that held the lock completed it meanwhile): 409/410, not 204.
      await requireOwn(actor, id)
      throw new AppError(409, 'conflict', 'This upload can no longer be terminated')
    }
    await deps.purge(stagingKey(id))
  }

  return { prepare, register, requireOwn, finish, terminated }
}

export type TusUploadService = ReturnType<typeof tusUploadService>
