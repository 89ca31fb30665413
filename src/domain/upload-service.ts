import type { Readable } from 'node:stream'
import type { Actor } from '../lib/actor.js'
import type { Db } from '../db.js'
import type { Storage } from '../storage/types.js'
import type { AuditContext } from './audit.js'
import type { DocumentRow } from './document-access.js'
import type { DocumentService } from './document-service.js'
import type { VersionResult, VersionService } from './version-service.js'
import type { DocumentFieldsInput } from '../schemas/documents.js'
import { expectedVersions, originalKey } from './documents.js'
import { checkFields, cleanFilename } from './document-create.js'
import { versionKey } from './versions.js'
import { deleteUpload, findUpload, insertUpload, inspect, isAllowedType, payloadTooLarge, storeInspected, unsupportedType } from './uploads.js'
import { cancelUpload, claimUpload, discardUpload, promoteUpload, stagingKey } from './upload-staging.js'
import { AppError, badRequest, conflict, forbidden, notFound } from '../lib/errors.js'
import { newId } from '../lib/ids.js'
import type { QuotaService, Reservation } from './quota.js'

/*
 * Every way bytes come in (a multipart POST, a pre-signed upload's complete, the last PATCH of a tus upload) ends in the
 * same two steps: a checked object at its final key (sha256, size, sniffed type, limits; deleted on
 * any failure), then a document (documentService.create) or a new version of one
 * (versionService.add). Framework-free: a multipart request is any async iterable of parts shaped
 * like @fastify/multipart's.
 */

export interface FilePartLike { type: 'file', fieldname: string, filename: string, mimetype: string, file: Readable & { truncated: boolean } }
export interface FieldPartLike { type: 'field', fieldname: string, value: unknown, valueTruncated: boolean }
export type UploadPart = FilePartLike | FieldPartLike

export interface UploadLimits { maxBytes: number, allowedTypes: string, urlTtl: number }

export interface UploadServiceDeps {
  db: Db
  storage: Storage
  limits: UploadLimits
  documents: Pick<DocumentService, 'create'>
  versions: Pick<VersionService, 'add' | 'requireWritable'>
  /** storage quotas (src/domain/quota.ts): reserved before any byte is stored, settled with the row, released on failure */
  quota: Pick<QuotaService, 'reserve' | 'release'>
  log: { error: (obj: object, msg: string) => void }
}

/** A pre-signed upload's reservation outlives its URL by this much: the uploads sweep releases it with the row, this is a backstop. */
export const PRESIGNED_RESERVATION_GRACE_MS = 2 * 24 * 3600 * 1000

export interface UploadStart { filename: string, mimeType: string, size: number, sha256?: string }
export interface UploadTicketDto { uploadId: string, method: 'PUT', url: string, headers: Record<string, string>, expiresAt: string }
export type Completed = { kind: 'document', doc: DocumentRow } | { kind: 'version', documentId: string, result: VersionResult }

const DOCUMENT_FIELDS = new Set(['title', 'description', 'tags', 'visibility'])
const NO_FIELDS = new Set<string>()

interface Received { stored: { filename: string, mimeType: string, size: number, sha256: string }, values: Record<string, string[]> }

export function uploadService (deps: UploadServiceDeps) {
  const { db, storage, limits } = deps

  const dropObject = async (key: string, requestId: string | null): Promise<void> => await storage.delete(key)
    .catch((e: unknown) => deps.log.error({ err: e, key, requestId }, 'could not delete an orphaned object'))

  /** Streams the one `file` part to `key` (checked on the way) and collects the fields allowed here. */
  async function receive (parts: AsyncIterable<UploadPart>, key: string, fieldNames: Set<string>, onStored: () => void): Promise<Received> {
    const values: Record<string, string[]> = {}
    let stored: Received['stored'] | null = null
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') throw badRequest(`Unexpected file part "${part.fieldname}": send the file as "file"`, 'validation_failed')
        if (stored !== null) throw badRequest('Send exactly one file', 'validation_failed')
        const inspected = await inspect(part.file, { maxBytes: limits.maxBytes, declaredType: part.mimetype, truncated: () => part.file.truncated })
        if (!isAllowedType(inspected.mimeType, limits.allowedTypes)) {
          inspected.body.destroy()
          throw unsupportedType(inspected.mimeType)
        }
        const r = await storeInspected(storage, key, inspected)
        onStored()
        stored = { filename: cleanFilename(part.filename), mimeType: inspected.mimeType, ...r }
        continue
      }
      if (!fieldNames.has(part.fieldname)) throw new AppError(400, 'validation_failed', `Unknown field "${part.fieldname}"`, [{ path: `/${part.fieldname}`, message: 'unknown property' }])
      if (part.valueTruncated) throw new AppError(400, 'validation_failed', `Field "${part.fieldname}" is too long`, [{ path: `/${part.fieldname}`, message: 'too long' }])
      ;(values[part.fieldname] ??= []).push(String(part.value))
    }
    if (stored === null) throw new AppError(400, 'validation_failed', 'A "file" part is required', [{ path: '/file', message: 'required' }])
    return { stored, values }
  }

  function documentFields (values: Record<string, string[]>): DocumentFieldsInput {
    const single = (name: string): string | undefined => {
      const v = values[name]
      if (v !== undefined && v.length > 1) throw new AppError(400, 'validation_failed', `Field "${name}" may be sent once`, [{ path: `/${name}`, message: 'repeated' }])
      return v?.[0]
    }
    return checkFields(Object.fromEntries(Object.entries({
      title: single('title'), description: single('description'), visibility: single('visibility'), tags: values.tags,
    }).filter(([, v]) => v !== undefined)))
  }

  /**
   * A multipart upload's quota reservation, before any byte is read: the request's declared size
   * (Content-Length, which is at least the file's) or, without one, UPLOAD_MAX_BYTES; settled to
   * the file's real size with its row. Held by the uploader (capped when it is not the owner).
   */
  async function reserveMultipart (ownerId: string, actor: Actor, declaredBytes: number | undefined): Promise<Reservation> {
    const bytes = declaredBytes !== undefined && Number.isSafeInteger(declaredBytes) && declaredBytes >= 0 ? Math.min(declaredBytes, limits.maxBytes) : limits.maxBytes
    return await deps.quota.reserve(ownerId, bytes, { heldBy: actor.id })
  }

  const release = async (r: Reservation, requestId: string | null): Promise<void> => {
    await deps.quota.release(r).catch((e: unknown) => deps.log.error({ err: e, reservation: r.id, requestId }, 'could not release a quota reservation'))
  }

  /** POST /documents: one `file` part plus optional document fields, before or after it. `declaredBytes`: the request's Content-Length. */
  async function createFromParts (actor: Actor, ctx: AuditContext, parts: AsyncIterable<UploadPart>, declaredBytes?: number): Promise<DocumentRow> {
    const reservation = await reserveMultipart(actor.id, actor, declaredBytes)
    const id = newId()
    const key = originalKey(id)
    let stored = false
    try {
      const { stored: object, values } = await receive(parts, key, DOCUMENT_FIELDS, () => { stored = true })
      return await deps.documents.create(actor, ctx, { id, ...object }, documentFields(values), { via: 'multipart', reservation })
    } catch (err) {
      // documents.create deletes the object on insert failures; here for everything before.
      if (stored) await dropObject(key, ctx.requestId)
      // A no-op when the document was recorded (the reservation was settled with it).
      await release(reservation, ctx.requestId)
      throw err
    }
  }

  /** POST /documents/:id/versions: one `file` part, no fields. Access and quota (the owner's) are checked before any byte is read. */
  async function addVersionFromParts (actor: Actor, ctx: AuditContext, documentId: string, parts: AsyncIterable<UploadPart>, expected?: number[] | 'any', declaredBytes?: number): Promise<VersionResult> {
    const { doc } = await deps.versions.requireWritable(actor, documentId)
    const reservation = await reserveMultipart(doc.ownerId, actor, declaredBytes)
    const key = versionKey(doc.id, newId())
    let stored = false
    let object: Received['stored']
    try {
      object = (await receive(parts, key, NO_FIELDS, () => { stored = true })).stored
    } catch (err) {
      if (stored) await dropObject(key, ctx.requestId)
      await release(reservation, ctx.requestId)
      throw err
    }
    // versions.add deletes the object on any failure, and when the bytes are the current version's.
    try {
      return await deps.versions.add(actor, ctx, doc.id, { storageKey: key, ...object }, { expected, via: 'multipart', reservation })
    } catch (err) {
      await release(reservation, ctx.requestId)
      throw err
    }
  }

  /** POST /uploads, or POST /documents/:id/versions/uploads with `documentId`: where to PUT the bytes. */
  async function start (actor: Actor, body: UploadStart, documentId?: string): Promise<UploadTicketDto> {
    if (body.size > limits.maxBytes) throw payloadTooLarge(limits.maxBytes)
    const type = body.mimeType.toLowerCase()
    if (!isAllowedType(type, limits.allowedTypes)) throw unsupportedType(type)
    const target = documentId !== undefined ? (await deps.versions.requireWritable(actor, documentId)).doc : null
    const id = newId()
    const key = stagingKey(id)
    const expiresAt = new Date(Date.now() + limits.urlTtl * 1000)
    // The declared size against the quota of the owner-to-be, before a URL exists; the
    // reservation has the upload's id (complete settles it, cancel, discard and the sweep release it)
    // and is held by the caller (capped when that is not the owner: QUOTA_SHARED_RESERVE_MAX_BYTES).
    const reservation = await deps.quota.reserve(target?.ownerId ?? actor.id, body.size, { heldBy: actor.id, id, expiresAt: new Date(expiresAt.getTime() + PRESIGNED_RESERVATION_GRACE_MS) })
    try {
      await insertUpload(db, { id, userId: actor.id, documentId: target?.id ?? null, filename: cleanFilename(body.filename), mimeType: type, size: body.size, sha256: body.sha256?.toLowerCase() ?? null, storageKey: key, expiresAt })
      const signed = await storage.presignPut(key, { expiresIn: limits.urlTtl, contentType: type, contentLength: body.size })
      return { uploadId: id, method: 'PUT', url: signed.url, headers: signed.headers, expiresAt: expiresAt.toISOString() }
    } catch (err) {
      await deleteUpload(db, id).catch((e: unknown) => deps.log.error({ err: e, uploadId: id }, 'could not delete an upload row'))
      await release(reservation, null)
      throw err
    }
  }

  /**
   * POST /uploads/:id/complete: the bytes are moved to their final key and checked there
   * (upload-staging.ts), then become a document, or a new version of the upload's document: for
   * that, access (write, documents:update, not trashed) is checked again now, and `fields` must be
   * empty (a version has none). `ifMatch`: the If-Match header, read for versions only. `via`: how
   * the bytes came (audited): a pre-signed URL, or tus (src/domain/tus-uploads.ts).
   */
  async function complete (actor: Actor, ctx: AuditContext, uploadId: string, fields: DocumentFieldsInput, ifMatch?: string, via: 'presigned' | 'tus' = 'presigned'): Promise<Completed> {
    const up = await findUpload(db, actor.id, uploadId)
    if (up === null) throw notFound('Upload')
    if (up.expiresAt.getTime() <= Date.now()) throw new AppError(410, 'upload_expired', 'This upload expired; start a new one')
    const documentId = up.documentId
    const expected = documentId !== null ? expectedVersions(ifMatch) : undefined
    if (documentId !== null) {
      if (!actor.can('documents:update')) throw forbidden('Completing an upload of a new version requires the documents:update permission')
      if (Object.keys(fields).length > 0) throw badRequest('A new version takes no document fields; change them with PATCH /documents/:id', 'validation_failed')
      await deps.versions.requireWritable(actor, documentId)
    }
    if (!await claimUpload(db, up)) throw conflict('This upload was already completed', 'upload_completed')
    const target = documentId !== null ? versionKey(documentId, up.id) : originalKey(up.id)
    const { mimeType, size, sha256 } = await promoteUpload(db, storage, up, target, limits.allowedTypes)
    try {
      if (documentId === null) {
        const doc = await deps.documents.create(actor, ctx, { id: up.id, filename: up.filename, mimeType, size, sha256 }, fields, { claimUploadId: up.id, via, reservation: { id: up.id } })
        return { kind: 'document', doc }
      }
      const result = await deps.versions.add(actor, ctx, documentId, { storageKey: target, filename: up.filename, mimeType, size, sha256 }, { expected, claimUploadId: up.id, via, reservation: { id: up.id } })
      return { kind: 'version', documentId, result }
    } catch (err) {
      await discardUpload(db, storage, up, target).catch((e: unknown) => deps.log.error({ err: e, uploadId: up.id }, 'could not discard an upload'))
      throw err
    }
  }

  /** DELETE /uploads/:id: false when the caller has no such pending upload. */
  async function cancel (actor: Actor, uploadId: string): Promise<boolean> {
    return await cancelUpload(db, storage, actor.id, uploadId)
  }

  return { createFromParts, addVersionFromParts, start, complete, cancel }
}

export type UploadService = ReturnType<typeof uploadService>
