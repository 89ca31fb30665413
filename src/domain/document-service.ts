import type { Actor } from '../lib/actor.js'
import type { Db } from '../db.js'
import type { Storage } from '../storage/types.js'
import type { AuditContext, RecordAudit } from './audit.js'
import { requireDocument, requirePurgeable, type DocumentRow } from './document-access.js'
import {
  deleteDocumentRow, deleteShare, finishProcessing, getDocumentRow, insertDocument, normalizeTags, originalKey, putShare, setTrashed, updateDocument, userExists,
  type NewDocument,
} from './documents.js'
import type { DocumentFieldsInput } from '../schemas/documents.js'
import { queueNewObject, type NewObjectDeps } from './document-scan.js'
import { AppError, badRequest, conflict, forbidden, notFound } from '../lib/errors.js'

export interface DocumentServiceDeps {
  db: Db
  storage: Pick<Storage, 'delete'>
  /** the queue (plugins/app/queue.ts `enqueue`), for the scan and thumbnail jobs */
  enqueue: (name: 'document-thumbnail' | 'document-scan', data: { documentId: string }) => Promise<unknown>
  /** CLAMD_URL is set: new objects wait in `scanning` for the document-scan job */
  scan: boolean
  /** queues the deletion of stored objects (src/jobs/delete-objects.ts) */
  deleteObjects: (keys: string[]) => Promise<void>
  clock: () => Date
  log: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  audit: RecordAudit
  /** The ingestion index following the document (src/domain/ingestions/follow.ts); never fails the change itself. */
  index?: {
    trashed: (ctx: AuditContext, doc: DocumentRow) => Promise<unknown>
    restored: (ctx: AuditContext, documentId: string) => Promise<unknown>
    purged: (ctx: AuditContext, doc: DocumentRow) => Promise<unknown>
  }
}

export interface StoredObject { id: string, filename: string, mimeType: string, size: number, sha256: string }

const versionMismatch = (current?: number): AppError => new AppError(412, 'version_mismatch', current !== undefined
  ? `The document is at version ${current}; re-read it and retry`
  : 'The document changed; re-read it and retry')

/**
 * Document changes: the object-level rule (src/domain/document-access.ts) decides, the routes have
 * gated the permission, and every change is audited here.
 */
export function documentService (deps: DocumentServiceDeps) {
  const { db, audit } = deps
  const subject = (id: string): string => `document:${id}`
  /** The index hooks run after the change is committed; their failure is logged (the recovery sweep re-sends queued rows). */
  const follow = async (what: string, documentId: string, fn: (() => Promise<unknown>) | undefined): Promise<void> => {
    if (fn === undefined) return
    try { await fn() } catch (err) { deps.log.error({ err, documentId }, `could not queue the index ${what}`) }
  }

  /** What every new object goes through (scan or thumbnail): document-scan.ts queueNewObject; the scan job calls queueThumbnail too. */
  const newObjectDeps: NewObjectDeps = {
    enqueue: deps.enqueue,
    log: deps.log,
    queueThumbnail: async (documentId, requestId) => {
      try {
        await deps.enqueue('document-thumbnail', { documentId })
        return 'processing'
      } catch (err) {
        deps.log.warn({ err, documentId, requestId }, 'thumbnail job could not be queued')
        await finishProcessing(db, documentId, { ok: false, error: 'the thumbnail job could not be queued' })
        return 'failed'
      }
    },
  }

  /**
   * The last step of every upload: the object is stored and verified, now the row. If the insert
   * fails the object is deleted (a document never points at a missing object and no object is left
   * without its row). Then queueNewObject: the malware scan (CLAMD_URL), else an image's thumbnail.
   */
  async function create (actor: Actor, ctx: AuditContext, stored: StoredObject, fields: DocumentFieldsInput, opts: { claimUploadId?: string, via: 'multipart' | 'presigned' | 'tus' }): Promise<DocumentRow> {
    // Publishing to everyone takes share rights, at creation as on PATCH.
    if (fields.visibility === 'internal' && !actor.can('documents:share') && !actor.can('documents:manage')) {
      throw forbidden('Creating an internal document requires the documents:share permission; leave visibility private, or ask an admin to grant it')
    }
    const input: NewDocument = {
      id: stored.id,
      ownerId: actor.id,
      title: fields.title ?? stored.filename,
      description: fields.description ?? null,
      filename: stored.filename,
      mimeType: stored.mimeType,
      size: stored.size,
      sha256: stored.sha256,
      visibility: fields.visibility ?? 'private',
      tags: normalizeTags(fields.tags),
    }
    let row: DocumentRow
    try {
      row = await insertDocument(db, input, { claimUploadId: opts.claimUploadId, scan: deps.scan })
    } catch (err) {
      // Another request completed this upload: the object is that document's now.
      if (err instanceof AppError && err.code === 'upload_completed') throw err
      await deps.storage.delete(originalKey(stored.id)).catch((e: unknown) => deps.log.error({ err: e, key: originalKey(stored.id), requestId: ctx.requestId }, 'could not delete an orphaned object'))
      throw err
    }
    // Scan or thumbnail; only a thumbnail job that could not be queued changes the row (to failed).
    if (await queueNewObject(newObjectDeps, row, ctx.requestId) === 'failed') {
      row = { ...row, status: 'failed', error: 'the thumbnail job could not be queued', version: row.version + 1 }
    }
    await audit(ctx, { action: 'document.create', subject: subject(row.id), payload: { via: opts.via, filename: row.filename, mimeType: row.mimeType, size: row.size, sha256: row.sha256 } })
    return row
  }

  /** PATCH: writers change title, description, tags; visibility takes share rights. `expected`: If-Match's versions. */
  async function update (actor: Actor, ctx: AuditContext, id: string, changes: { title?: string, description?: string | null, tags?: string[], visibility?: 'private' | 'internal' }, expected: number[] | undefined | 'any'): Promise<DocumentRow> {
    const { doc, canShare } = await requireDocument(db, actor, id, 'write', 'any')
    if (doc.deletedAt !== null) throw conflict('The document is in the trash; restore it first', 'document_trashed')
    // Visibility decides who may read the document: changing it takes share rights, not a write
    // share (the same value again is a no-op, fine for any writer).
    if (changes.visibility !== undefined && changes.visibility !== doc.visibility && !canShare) {
      throw forbidden('Changing the visibility requires the documents:share permission as the document\'s owner, or the documents:manage permission')
    }
    if (Array.isArray(expected) && !expected.includes(doc.version)) throw versionMismatch(doc.version)
    const { tags, ...rest } = changes
    const updated = await updateDocument(db, doc.id, doc.version, { ...rest, ...(tags !== undefined ? { tags: normalizeTags(tags) } : {}) })
    if (updated === null) {
      // Changed between our read and our write: with If-Match the client must re-read; without, it raced.
      throw expected !== undefined ? versionMismatch() : conflict('The document changed while updating it, retry', 'version_mismatch')
    }
    await audit(ctx, { action: 'document.update', subject: subject(doc.id), payload: { fields: Object.keys(changes), version: updated.version } })
    return updated
  }

  /** Moves to the trash; a trashed document is 409 for those who could restore it (404 for everyone else). */
  async function trash (actor: Actor, ctx: AuditContext, id: string): Promise<void> {
    const { doc } = await requireDocument(db, actor, id, 'write', 'any')
    if (doc.deletedAt !== null || !await setTrashed(db, doc.id, true)) throw conflict('The document is already in the trash', 'already_trashed')
    await audit(ctx, { action: 'document.delete', subject: subject(doc.id), payload: { permanent: false } })
    await follow('delete', doc.id, deps.index && (async () => await deps.index!.trashed(ctx, doc)))
  }

  /** Deletes for good (the rule's `purge`), its objects by job. */
  async function purge (actor: Actor, ctx: AuditContext, id: string): Promise<void> {
    const { doc } = await requirePurgeable(db, actor, id)
    const keys = await deleteDocumentRow(db, doc.id)
    if (keys !== null) await deps.deleteObjects(keys)
    await audit(ctx, { action: 'document.delete', subject: subject(doc.id), payload: { permanent: true, filename: doc.filename, ownerId: doc.ownerId } })
    if (keys !== null) await follow('delete', doc.id, deps.index && (async () => await deps.index!.purged(ctx, doc)))
  }

  async function restore (actor: Actor, ctx: AuditContext, id: string): Promise<DocumentRow> {
    const { doc } = await requireDocument(db, actor, id, 'write', 'any')
    if (doc.deletedAt === null || !await setTrashed(db, doc.id, false)) throw conflict('The document is not in the trash', 'not_trashed')
    await audit(ctx, { action: 'document.restore', subject: subject(doc.id) })
    await follow('upsert', doc.id, deps.index && (async () => await deps.index!.restored(ctx, doc.id)))
    return await getDocumentRow(db, doc.id) ?? { ...doc, deletedAt: null, version: doc.version + 1 }
  }

  async function share (actor: Actor, ctx: AuditContext, id: string, userId: string, access: 'read' | 'write'): Promise<{ userId: string, access: 'read' | 'write', createdAt: string }> {
    const { doc } = await requireDocument(db, actor, id, 'share')
    if (!await userExists(db, userId)) throw notFound('User')
    if (userId === doc.ownerId) throw badRequest('The owner already has full access; share with another user', 'validation_failed')
    const { previous, createdAt } = await putShare(db, doc.id, userId, access)
    if (previous !== access) await audit(ctx, { action: 'document.share', subject: subject(doc.id), payload: { userId, access, previous } })
    return { userId, access, createdAt: createdAt.toISOString() }
  }

  async function unshare (actor: Actor, ctx: AuditContext, id: string, userId: string): Promise<void> {
    const { doc } = await requireDocument(db, actor, id, 'share')
    if (!await deleteShare(db, doc.id, userId)) throw notFound('Share')
    await audit(ctx, { action: 'document.unshare', subject: subject(doc.id), payload: { userId } })
  }

  /** A download was answered (the route streams the bytes; the rule was checked when it loaded the document). */
  async function downloaded (ctx: AuditContext, documentId: string, kind: string, range?: [number, number], version?: number): Promise<void> {
    await audit(ctx, { action: 'document.download', subject: subject(documentId), payload: { kind, ...(range !== undefined ? { range } : {}), ...(version !== undefined ? { version } : {}) } })
  }

  return { create, update, trash, purge, restore, share, unshare, downloaded, newObjectDeps }
}

export type DocumentService = ReturnType<typeof documentService>
