import { and, desc, eq, inArray, lt, ne, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../db.js'
import { documents, documentVersions, uploads } from '../../drizzle/schema/index.js'
import { AppError, conflict, notFound } from '../lib/errors.js'
import { toDocument, wantsThumbnail } from './documents.js'
import { documentSubject, recordEvent } from './webhooks/outbox.js'
import { initialStatus } from './document-scan.js'
import { chargeUsage } from './quota.js'

/*
 * A document's content versions (table document_versions). The documents row mirrors its current
 * version: storage_key, size, sha256, mime_type, filename and current_version. Version 1 lives at
 * documents/<id>/original (where every document started); every later version at its own key
 * documents/<id>/versions/<object id>, written before its number is known (two uploads of the same
 * document never share a key), and numbered when it is committed under the document's row lock.
 */

export const versionKey = (documentId: string, objectId: string): string => `documents/${documentId}/versions/${objectId}`

export type VersionRow = typeof documentVersions.$inferSelect

/** A stored, checked object that is about to become a version. */
export interface StoredVersion { storageKey: string, size: number, sha256: string, mimeType: string, filename: string }

export type Committed =
  | { kind: 'same', version: VersionRow, documentVersion: number }
  | { kind: 'added', version: VersionRow, documentVersion: number, previousThumbnailKey: string | null, count: number, status: string }

export const versionMismatch = (current?: number): AppError => new AppError(412, 'version_mismatch', current !== undefined
  ? `The document is at version ${current}; re-read it and retry`
  : 'The document changed; re-read it and retry')

export const documentTrashed = (): AppError => conflict('The document is in the trash; restore it first', 'document_trashed')

/**
 * Makes `stored` the document's new current version, in one transaction under the document's row
 * lock: the version row, the document row following it (content columns, metadata `version` + 1,
 * thumbnail and image metadata cleared, its status initialStatus's: `scanning` with `scan`, else
 * `processing` for images) and, for a pre-signed upload, the upload turning `completed`; `inTx`
 * runs in the same transaction (the quota reservation settled against the owner). Bytes equal to the current version's (same sha256) add nothing:
 * `same`, the caller deletes what it stored. 404/409 (trashed)/412 (If-Match) checked under the lock.
 */
export async function commitVersion (db: Db, documentId: string, stored: StoredVersion, by: string,
  opts: { expected?: number[] | 'any', claimUploadId?: string, scan?: boolean, inTx?: (tx: DbOrTx, c: { ownerId: string, added: boolean }) => Promise<void> } = {}): Promise<Committed> {
  return await db.transaction(async (tx) => {
    const [doc] = await tx.select({ version: documents.version, current: documents.currentVersion, sha256: documents.sha256, deletedAt: documents.deletedAt, thumbnailKey: documents.thumbnailKey, ownerId: documents.ownerId })
      .from(documents).where(eq(documents.id, documentId)).for('update')
    if (doc === undefined) throw notFound('Document')
    if (doc.deletedAt !== null) throw documentTrashed()
    if (Array.isArray(opts.expected) && !opts.expected.includes(doc.version)) throw versionMismatch(doc.version)
    if (opts.claimUploadId !== undefined) {
      const [res] = await tx.update(uploads).set({ status: 'completed' }).where(and(eq(uploads.id, opts.claimUploadId), eq(uploads.status, 'completing')))
      if (res.affectedRows !== 1) throw conflict('This upload was already completed', 'upload_completed')
    }
    if (doc.sha256 === stored.sha256) {
      const [current] = await tx.select().from(documentVersions).where(and(eq(documentVersions.documentId, documentId), eq(documentVersions.number, doc.current)))
      if (current === undefined) throw new Error(`document ${documentId} has no row for its current version ${doc.current}`)
      await opts.inTx?.(tx, { ownerId: doc.ownerId, added: false })
      return { kind: 'same', version: current, documentVersion: doc.version }
    }
    const now = new Date()
    const scan = opts.scan === true
    const version: VersionRow = { documentId, number: doc.current + 1, ...stored, createdAt: now, createdBy: by, scanStatus: scan ? 'scanning' : null }
    await tx.insert(documentVersions).values(version)
    await tx.update(documents).set({
      storageKey: stored.storageKey,
      size: stored.size,
      sha256: stored.sha256,
      mimeType: stored.mimeType,
      filename: stored.filename,
      currentVersion: version.number,
      status: initialStatus({ scan, thumbnail: wantsThumbnail(stored.mimeType) }),
      thumbnailKey: null,
      thumbnailWidth: null,
      thumbnailHeight: null,
      metadata: {},
      error: null,
      version: doc.version + 1,
      updatedAt: now,
    }).where(eq(documents.id, documentId))
    await opts.inTx?.(tx, { ownerId: doc.ownerId, added: true })
    const [{ count } = { count: 0 }] = await tx.select({ count: sql<number>`count(*)` }).from(documentVersions).where(eq(documentVersions.documentId, documentId))
    const [row] = await tx.select().from(documents).where(eq(documents.id, documentId))
    if (row !== undefined) await recordEvent(tx, { type: 'document.version_added', subject: documentSubject(documentId), data: { ...toDocument(row), addedVersion: { number: version.number, size: version.size, sha256: version.sha256, mimeType: version.mimeType, filename: version.filename, createdAt: now.toISOString(), createdBy: by } } }, now)
    return { kind: 'added', version, documentVersion: doc.version + 1, previousThumbnailKey: doc.thumbnailKey, count: Number(count), status: row?.status ?? 'ready' }
  })
}

export async function getVersion (db: Db, documentId: string, number: number): Promise<VersionRow | null> {
  const [row] = await db.select().from(documentVersions).where(and(eq(documentVersions.documentId, documentId), eq(documentVersions.number, number))).limit(1)
  return row ?? null
}

/** Newest first, `limit` + 1 rows from before `before` (a version number) for pageOf. */
export async function listVersionRows (db: Db, documentId: string, limit: number, before?: number): Promise<VersionRow[]> {
  const conds = [eq(documentVersions.documentId, documentId)]
  if (before !== undefined) conds.push(lt(documentVersions.number, before))
  return await db.select().from(documentVersions).where(and(...conds)).orderBy(desc(documentVersions.number)).limit(limit + 1)
}

/** The versions beyond the newest `keep`, never the current one: what pruning deletes. */
export async function prunable (db: Db, documentId: string, keep: number): Promise<VersionRow[]> {
  const [doc] = await db.select({ current: documents.currentVersion }).from(documents).where(eq(documents.id, documentId))
  if (doc === undefined) return []
  const rows = await db.select().from(documentVersions)
    .where(and(eq(documentVersions.documentId, documentId), ne(documentVersions.number, doc.current)))
    .orderBy(desc(documentVersions.number)).limit(100_000).offset(Math.max(0, keep - 1))
  return rows
}

/**
 * Deletes these version rows (never the current one, whatever happened meanwhile); how many went.
 * Their bytes come off the owner's quota usage in the same transaction.
 */
export async function deleteVersionRows (db: Db, documentId: string, numbers: number[]): Promise<number> {
  return await db.transaction(async (tx) => {
    const [doc] = await tx.select({ current: documents.currentVersion, ownerId: documents.ownerId }).from(documents).where(eq(documents.id, documentId)).for('update')
    const gone = numbers.filter(n => n !== doc?.current)
    if (doc === undefined || gone.length === 0) return 0
    const where = and(eq(documentVersions.documentId, documentId), inArray(documentVersions.number, gone))
    const rows = await tx.select({ size: documentVersions.size }).from(documentVersions).where(where)
    const [res] = await tx.delete(documentVersions).where(where)
    await chargeUsage(tx, doc.ownerId, -rows.reduce((sum, r) => sum + r.size, 0))
    return res.affectedRows
  })
}
