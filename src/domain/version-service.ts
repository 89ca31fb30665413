import type { Actor } from '../lib/actor.js'
import type { Db, DbOrTx } from '../db.js'
import type { Storage } from '../storage/types.js'
import type { Payload } from '../jobs/catalogue.js'
import type { AuditContext, RecordAudit } from './audit.js'
import { requireDocument, type DocumentWithAccess } from './document-access.js'
import { assertVersionAvailable, queueNewObject, type NewObjectDeps } from './document-scan.js'
import { settleQuota, type QuotaService, type Reservation } from './quota.js'
import { commitVersion, deleteVersionRows, documentTrashed, versionMismatch, getVersion, listVersionRows, prunable, versionKey, type Committed, type StoredVersion, type VersionRow } from './versions.js'
import { AppError, notFound } from '../lib/errors.js'
import { decodeSeqCursor, pageOf } from '../lib/pagination.js'
import { newId } from '../lib/ids.js'
import { StorageNotFound } from '../storage/types.js'
import type { VersionDto } from '../schemas/versions.js'

type VersionJob = 'versions-prune'

export interface VersionServiceDeps {
  db: Db
  storage: Pick<Storage, 'delete' | 'copy'>
  enqueue: <N extends VersionJob>(name: N, data: Payload<N>) => Promise<unknown>
  /** CLAMD_URL is set: a new version waits in `scanning` for its document-scan job, as a new document does */
  scan: boolean
  /** the scan or thumbnail hand-off of new objects (documentService.newObjectDeps, src/domain/document-scan.ts) */
  newObject: NewObjectDeps
  /** storage quotas (src/domain/quota.ts): a restore stores a copy, so it reserves too */
  quota: Pick<QuotaService, 'reserve' | 'release'>
  /** queues the deletion of stored objects (src/jobs/delete-objects.ts) */
  deleteObjects: (keys: string[]) => Promise<void>
  /** VERSIONS_KEEP */
  keep: number
  log: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  audit: RecordAudit
  /** Told after a version was added or restored (the index lifecycle re-ingests); optional, never fails the change. */
  onContentChanged?: (ctx: AuditContext, documentId: string, version: number) => Promise<void>
}

/** What adding (or restoring) a version did: `created` false when the bytes were the current version's. */
export interface VersionResult { created: boolean, version: VersionDto, documentVersion: number }

export const toVersion = (row: VersionRow, current: boolean): VersionDto => ({
  number: row.number,
  size: row.size,
  sha256: row.sha256,
  mimeType: row.mimeType,
  filename: row.filename,
  createdAt: row.createdAt.toISOString(),
  createdBy: row.createdBy,
  current,
})

/**
 * Content versions of a document: add (an upload's checked object), list, read, restore (a
 * server-side copy) and prune. Needs write access for changes, read access to look; a trashed
 * document is 409 for changes. The routes gate `documents:update` / `documents:read`.
 */
export function versionService (deps: VersionServiceDeps) {
  const { db, audit } = deps
  const subject = (id: string): string => `document:${id}`
  /** Settles an upload's quota reservation in the commit's transaction: the size when a version was added, nothing when the bytes were the current ones. */
  const settleWith = (reservation: Pick<Reservation, 'id'> | undefined, size: number) => reservation === undefined
    ? undefined
    : async (tx: DbOrTx, c: { ownerId: string, added: boolean }) => await settleQuota(tx, reservation.id, c.added ? size : 0, c.ownerId)

  /** The document an actor is about to add a version to (before any byte is read): 404/403/409. */
  async function requireWritable (actor: Actor, id: string): Promise<DocumentWithAccess> {
    const found = await requireDocument(db, actor, id, 'write', 'any')
    if (found.doc.deletedAt !== null) throw documentTrashed()
    return found
  }

  /**
   * What follows a committed new version: old thumbnail away, the scan (or the thumbnail) queued
   * as for a new document (queueNewObject), pruning, the audit, the hook. While the version is
   * `scanning` the hook waits: the scan job tells it once the bytes are clean.
   */
  async function committed (ctx: AuditContext, documentId: string, c: Committed & { kind: 'added' }, action: string, payload: Record<string, unknown>): Promise<void> {
    const n = c.version.number
    if (c.previousThumbnailKey !== null) await deps.deleteObjects([c.previousThumbnailKey])
    const status = await queueNewObject(deps.newObject, { id: documentId, status: c.status, version: n }, ctx.requestId)
    if (c.count > deps.keep) {
      // Not fatal: the next change of this document queues it again.
      await deps.enqueue('versions-prune', { documentId }).catch((err: unknown) => deps.log.warn({ err, documentId }, 'version pruning could not be queued'))
    }
    await audit(ctx, { action, subject: subject(documentId), payload: { number: n, size: c.version.size, sha256: c.version.sha256, mimeType: c.version.mimeType, ...payload } })
    if (status !== 'scanning') await contentChanged(ctx, documentId, n)
  }

  /** The hook after a new current version (by a scan job too, once a scanned version turned out clean); never fails. */
  async function contentChanged (ctx: AuditContext, documentId: string, n: number): Promise<void> {
    try {
      await deps.onContentChanged?.(ctx, documentId, n)
    } catch (err) {
      deps.log.error({ err, documentId, version: n, requestId: ctx.requestId }, 'content change hook failed')
    }
  }

  /**
   * Makes a stored, checked object the document's new current version (201), or, with the current
   * version's bytes, nothing (200, the object deleted). On any failure the object is deleted, except
   * when another request completed the same upload (the object is that version's).
   */
  async function add (actor: Actor, ctx: AuditContext, documentId: string, stored: StoredVersion,
    opts: { expected?: number[] | 'any', claimUploadId?: string, via: 'multipart' | 'presigned' | 'tus', reservation?: Pick<Reservation, 'id'> }): Promise<VersionResult> {
    const drop = async (): Promise<void> => await deps.storage.delete(stored.storageKey)
      .catch((e: unknown) => deps.log.error({ err: e, key: stored.storageKey, requestId: ctx.requestId }, 'could not delete an orphaned object'))
    let c: Committed
    try {
      c = await commitVersion(db, documentId, stored, actor.id, { ...opts, scan: deps.scan, inTx: settleWith(opts.reservation, stored.size) })
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'upload_completed')) await drop()
      throw err
    }
    if (c.kind === 'same') {
      await drop()
      return { created: false, version: toVersion(c.version, true), documentVersion: c.documentVersion }
    }
    await committed(ctx, documentId, c, 'document.version_added', { via: opts.via, filename: c.version.filename })
    return { created: true, version: toVersion(c.version, true), documentVersion: c.documentVersion }
  }

  /**
   * Version n again as a new current version, copied on the storage's side (no byte through this
   * process). Already the current content (n is current, or has the same bytes): nothing, 200.
   */
  async function restore (actor: Actor, ctx: AuditContext, documentId: string, n: number, expected?: number[] | 'any'): Promise<VersionResult> {
    const { doc } = await requireWritable(actor, documentId)
    const old = await getVersion(db, doc.id, n)
    if (old === null) throw notFound('Version')
    if (Array.isArray(expected) && !expected.includes(doc.version)) {
      throw versionMismatch(doc.version)
    }
    if (old.sha256 === doc.sha256) {
      const current = await getVersion(db, doc.id, doc.currentVersion)
      if (current !== null) return { created: false, version: toVersion(current, true), documentVersion: doc.version }
    }
    // Bytes that are being scanned, or were found infected, are not copied back into service.
    assertVersionAvailable(old)
    // The copy is stored bytes like any upload: against the owner's quota, reserved first.
    const reservation = await deps.quota.reserve(doc.ownerId, old.size, { heldBy: actor.id })
    const key = versionKey(doc.id, newId())
    try {
      await deps.storage.copy(old.storageKey, key)
    } catch (err) {
      await deps.quota.release(reservation)
      if (err instanceof StorageNotFound) throw notFound('Version content')
      throw err
    }
    const stored = { storageKey: key, size: old.size, sha256: old.sha256, mimeType: old.mimeType, filename: old.filename }
    let c: Committed
    try {
      c = await commitVersion(db, doc.id, stored, actor.id, { expected, scan: deps.scan, inTx: settleWith(reservation, old.size) })
    } catch (err) {
      await deps.storage.delete(key).catch((e: unknown) => deps.log.error({ err: e, key }, 'could not delete an orphaned object'))
      await deps.quota.release(reservation).catch((e: unknown) => deps.log.error({ err: e, reservation: reservation.id }, 'could not release a quota reservation'))
      throw err
    }
    if (c.kind === 'same') {
      await deps.storage.delete(key)
      return { created: false, version: toVersion(c.version, true), documentVersion: c.documentVersion }
    }
    await committed(ctx, doc.id, c, 'document.version_restored', { from: n })
    return { created: true, version: toVersion(c.version, true), documentVersion: c.documentVersion }
  }

  /** Newest first; readable documents only (trashed ones for those who may restore them, as for content). */
  async function list (actor: Actor, documentId: string, q: { limit: number, cursor?: string }): Promise<{ items: VersionDto[], nextCursor: string | null }> {
    const { doc } = await requireDocument(db, actor, documentId, 'read', 'any')
    const rows = await listVersionRows(db, doc.id, q.limit, q.cursor !== undefined ? decodeSeqCursor(q.cursor) : undefined)
    const page = pageOf(rows, q.limit, r => r.number)
    return { items: page.items.map(r => toVersion(r, r.number === doc.currentVersion)), nextCursor: page.nextCursor }
  }

  /** One version of a document the actor may read (404 for unknown numbers). */
  async function get (actor: Actor, documentId: string, n: number): Promise<{ doc: DocumentWithAccess['doc'], version: VersionRow }> {
    const { doc } = await requireDocument(db, actor, documentId, 'read', 'any')
    const version = await getVersion(db, doc.id, n)
    if (version === null) throw notFound('Version')
    return { doc, version }
  }

  /**
   * The versions-prune job: the versions beyond VERSIONS_KEEP (oldest first, never the current)
   * lose their objects, then their rows. A failed delete throws (the job is retried): the rows
   * stay until their objects are gone, so nothing is left without a row to find it by.
   */
  async function prune (documentId: string): Promise<number[]> {
    const victims = await prunable(db, documentId, deps.keep)
    if (victims.length === 0) return []
    for (const v of victims) await deps.storage.delete(v.storageKey)
    await deleteVersionRows(db, documentId, victims.map(v => v.number))
    const numbers = victims.map(v => v.number).sort((a, b) => a - b)
    await audit(null, { action: 'document.versions_pruned', subject: subject(documentId), actorId: null, payload: { numbers, keep: deps.keep } })
    return numbers
  }

  return { requireWritable, add, restore, list, get, prune, contentChanged }
}

export type VersionService = ReturnType<typeof versionService>
