import { and, eq, isNotNull, isNull, lt, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../db.js'
import { documents, documentShares, documentTags, documentVersions, uploads } from '../../drizzle/schema/index.js'
import { DOCUMENT_COLUMNS, toDocumentRow, type DocumentRow, type RawDocumentRow } from './document-access.js'
import { AppError, conflict } from '../lib/errors.js'
import { initialStatus } from './document-scan.js'
import { chargeUsage } from './quota.js'
import { MAX_TAG_LENGTH, MAX_TAGS, type DocumentDto } from '../schemas/documents.js'
import { documentSubject, recordEvent } from './webhooks/outbox.js'

export const originalKey = (id: string): string => `documents/${id}/original`
/** Version 1's thumbnail keeps the key it always had; later versions' have their own (a late job for an older version never overwrites a newer one's). */
export const thumbnailKey = (id: string, version = 1): string => version === 1 ? `documents/${id}/thumbnail.webp` : `documents/${id}/thumbnail-v${version}.webp`

/** Types sharp turns into thumbnails: these documents go through `processing`. */
const THUMBNAIL_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif', 'image/tiff'])
export const wantsThumbnail = (mimeType: string): boolean => THUMBNAIL_TYPES.has(mimeType)

/**
 * A tag's one canonical form (Unicode NFC, trimmed, lower case), used when tags are stored and
 * when they are looked up: the tag column compares bytes (utf8mb4_bin), as the JS Set below does.
 */
export const normalizeTag = (tag: string): string => tag.trim().toLowerCase().normalize('NFC')

/** Canonical (normalizeTag), unique; at most MAX_TAGS of MAX_TAG_LENGTH characters (else 400). */
export function normalizeTags (tags: readonly string[] | undefined): string[] {
  if (tags === undefined) return []
  const out = [...new Set(tags.map(normalizeTag).filter(t => t !== ''))]
  const long = out.find(t => [...t].length > MAX_TAG_LENGTH)
  if (long !== undefined) throw new AppError(400, 'validation_failed', `Tags may have at most ${MAX_TAG_LENGTH} characters`, [{ path: '/tags', message: 'tag too long' }])
  if (out.length > MAX_TAGS) throw new AppError(400, 'validation_failed', `A document may have at most ${MAX_TAGS} tags`, [{ path: '/tags', message: 'too many tags' }])
  return out
}

export function toDocument (row: DocumentRow): DocumentDto {
  const dto: DocumentDto = {
    id: row.id,
    title: row.title,
    description: row.description,
    filename: row.filename,
    mimeType: row.mimeType,
    size: row.size,
    sha256: row.sha256,
    status: row.status as DocumentDto['status'],
    visibility: row.visibility as DocumentDto['visibility'],
    tags: row.tags,
    ownerId: row.ownerId,
    version: row.version,
    thumbnail: row.thumbnailKey !== null && row.thumbnailWidth !== null && row.thumbnailHeight !== null ? { width: row.thumbnailWidth, height: row.thumbnailHeight } : null,
    metadata: row.metadata,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    deletedAt: row.deletedAt?.toISOString() ?? null,
    index: {
      state: row.indexState,
      version: row.indexVersion,
      chunks: row.indexChunks,
      pipeline: row.indexPipeline,
      pipelineVersion: row.indexPipelineVersion,
      indexedAt: row.indexedAt?.toISOString() ?? null,
      lastError: row.indexError,
    },
  }
  if ((row.status === 'failed' || row.status === 'infected') && row.error !== null) dto.error = row.error
  return dto
}

export interface NewDocument {
  id: string
  ownerId: string
  title: string
  description: string | null
  filename: string
  mimeType: string
  size: number
  sha256: string
  visibility: 'private' | 'internal'
  tags: string[]
}

/**
 * Inserts a document whose object is already stored, with its tags, in one transaction.
 * `claimUploadId`: the claimed upload this document completes; it turns `completed` in the same
 * transaction (409 if it is no longer claimed). `scan`: the object waits for its malware scan
 * (status `scanning`, src/domain/document-scan.ts). `inTx`: more writes in the same transaction
 * (the quota reservation settled, src/domain/quota.ts).
 */
export async function insertDocument (db: Db, input: NewDocument, opts: { claimUploadId?: string, scan?: boolean, inTx?: (tx: DbOrTx, row: DocumentRow) => Promise<void> } = {}): Promise<DocumentRow> {
  const now = new Date()
  const row: DocumentRow = {
    ...input,
    status: initialStatus({ scan: opts.scan === true, thumbnail: wantsThumbnail(input.mimeType) }),
    storageKey: originalKey(input.id),
    thumbnailKey: null,
    thumbnailWidth: null,
    thumbnailHeight: null,
    metadata: {},
    error: null,
    version: 1,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    currentVersion: 1,
    indexState: 'none',
    indexVersion: null,
    indexChunks: null,
    indexPipeline: null,
    indexPipelineVersion: null,
    indexedAt: null,
    indexError: null,
  }
  await db.transaction(async (tx) => {
    if (opts.claimUploadId !== undefined) {
      const [res] = await tx.update(uploads).set({ status: 'completed' }).where(and(eq(uploads.id, opts.claimUploadId), eq(uploads.status, 'completing')))
      if (res.affectedRows !== 1) throw conflict('This upload was already completed', 'upload_completed')
    }
    await tx.insert(documents).values(row)
    await tx.insert(documentVersions).values({ documentId: row.id, number: 1, storageKey: row.storageKey, size: row.size, sha256: row.sha256, mimeType: row.mimeType, filename: row.filename, createdAt: now, createdBy: row.ownerId, scanStatus: opts.scan === true ? 'scanning' : null })
    if (row.tags.length > 0) await tx.insert(documentTags).values(row.tags.map(tag => ({ documentId: row.id, tag })))
    await opts.inTx?.(tx, row)
    await recordEvent(tx, { type: 'document.created', subject: documentSubject(row.id), data: toDocument(row) }, now)
  })
  return row
}

// Reading documents as JSON text built by MySQL: GET /documents/:id and the listing.
export { decodeCursor, encodeCursor, listDocuments, readDocumentJson, type ListFilters } from './document-read.js'

export function expectedVersions (ifMatch: string | undefined): number[] | undefined | 'any' {
  if (ifMatch === undefined || ifMatch.trim() === '') return undefined
  if (ifMatch.trim() === '*') return 'any'
  return ifMatch.split(',').map((tag) => {
    const m = /^(?:W\/)?"(\d{1,9})"$/.exec(tag.trim())
    if (m?.[1] === undefined) throw new AppError(412, 'version_mismatch', 'If-Match must be "<version>" (or a list of them) as given in the ETag')
    return Number(m[1])
  })
}

export interface DocumentChanges {
  title?: string
  description?: string | null
  tags?: string[]
  visibility?: 'private' | 'internal'
}

/**
 * Applies a change and bumps the version, only if the version is still `version` (optimistic
 * lock). Returns the new row, or null when someone else changed it first.
 */
export async function updateDocument (db: Db, id: string, version: number, changes: DocumentChanges): Promise<DocumentRow | null> {
  return await db.transaction(async (tx) => {
    const set: Partial<DocumentRow> = { updatedAt: new Date(), version: version + 1 }
    if (changes.title !== undefined) set.title = changes.title
    if (changes.description !== undefined) set.description = changes.description
    if (changes.visibility !== undefined) set.visibility = changes.visibility
    if (changes.tags !== undefined) set.tags = changes.tags
    const [res] = await tx.update(documents).set(set).where(and(eq(documents.id, id), eq(documents.version, version)))
    if (res.affectedRows !== 1) return null
    if (changes.tags !== undefined) {
      await tx.delete(documentTags).where(eq(documentTags.documentId, id))
      if (changes.tags.length > 0) await tx.insert(documentTags).values(changes.tags.map(tag => ({ documentId: id, tag })))
    }
    const [row] = await tx.select().from(documents).where(eq(documents.id, id))
    if (row !== undefined) await recordEvent(tx, { type: 'document.updated', subject: documentSubject(id), data: toDocument(row) })
    return row ?? null
  })
}

/** Moves to the trash (deleted=true) or back out of it. False when it was not in the expected state. */
export async function setTrashed (db: DbOrTx, id: string, trashed: boolean): Promise<boolean> {
  const now = new Date()
  return await db.transaction(async (tx) => {
    const [res] = await tx.update(documents)
      .set({ deletedAt: trashed ? now : null, updatedAt: now, version: sql`${documents.version} + 1` })
      .where(and(eq(documents.id, id), trashed ? isNull(documents.deletedAt) : isNotNull(documents.deletedAt)))
    if (res.affectedRows !== 1) return false
    const [row] = await tx.select().from(documents).where(eq(documents.id, id))
    if (row !== undefined) await recordEvent(tx, { type: trashed ? 'document.trashed' : 'document.restored', subject: documentSubject(id), data: toDocument(row) }, now)
    return true
  })
}

/**
 * Deletes the row, its versions, tags and shares; returns the storage keys the caller must delete
 * (by job). The owner's quota usage goes down by every version's size in the same transaction.
 */
export async function deleteDocumentRow (db: Db, id: string): Promise<string[] | null> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.select().from(documents).where(eq(documents.id, id)).for('update')
    if (row === undefined) return null
    const versions = await tx.select({ storageKey: documentVersions.storageKey, size: documentVersions.size }).from(documentVersions).where(eq(documentVersions.documentId, id))
    await tx.delete(documentTags).where(eq(documentTags.documentId, id))
    await tx.delete(documentShares).where(eq(documentShares.documentId, id))
    await tx.delete(documentVersions).where(eq(documentVersions.documentId, id))
    await tx.delete(documents).where(eq(documents.id, id))
    await chargeUsage(tx, row.ownerId, -versions.reduce((sum, v) => sum + v.size, 0))
    await recordEvent(tx, { type: 'document.deleted', subject: documentSubject(id), data: toDocument(row) })
    const versionKeys = versions.map(v => v.storageKey).filter(k => k !== row.storageKey)
    return [row.storageKey, ...versionKeys, thumbnailKey(id), ...(row.thumbnailKey !== null && row.thumbnailKey !== thumbnailKey(id) ? [row.thumbnailKey] : [])]
  })
}

/** Trashed before `before`, oldest first: what the purge job deletes. */
export async function trashedBefore (db: Db, before: Date, limit: number): Promise<Array<{ id: string, ownerId: string, indexState: string, currentVersion: number }>> {
  return await db.select({ id: documents.id, ownerId: documents.ownerId, indexState: documents.indexState, currentVersion: documents.currentVersion }).from(documents)
    .where(and(isNotNull(documents.deletedAt), lt(documents.deletedAt, before)))
    .orderBy(documents.deletedAt, documents.id).limit(limit)
}

export { deleteShare, listShares, putShare, userExists } from './document-shares.js'

/**
 * Thumbnail job results: processing -> ready with the thumbnail, or -> failed with the error; only
 * while `version` is still the current content version. False when nothing changed.
 */
export async function finishProcessing (db: Db, id: string, result: { ok: true, thumbnailKey: string, width: number, height: number, metadata: Record<string, unknown> } | { ok: false, error: string }, version = 1): Promise<boolean> {
  const now = new Date()
  const set: Partial<DocumentRow> = result.ok
    ? { status: 'ready', thumbnailKey: result.thumbnailKey, thumbnailWidth: result.width, thumbnailHeight: result.height, metadata: result.metadata, error: null }
    : { status: 'failed', error: result.error.slice(0, 2000) }
  const [res] = await db.update(documents).set({ ...set, updatedAt: now, version: sql`${documents.version} + 1` })
    .where(and(eq(documents.id, id), eq(documents.status, 'processing'), eq(documents.currentVersion, version)))
  return res.affectedRows === 1
}

/** Documents left in `processing` since before `before`, with their current content version (the thumbnail sweep). */
export async function processingSince (db: Db, before: Date, limit: number): Promise<Array<{ id: string, currentVersion: number }>> {
  return await db.select({ id: documents.id, currentVersion: documents.currentVersion }).from(documents)
    .where(and(eq(documents.status, 'processing'), lt(documents.updatedAt, before)))
    .orderBy(documents.updatedAt).limit(limit)
}

const GET_DOCUMENT_SQL = `SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ? LIMIT 1`

/** One row by id, whatever its state (the dispatch and thumbnail jobs, restore). */
export async function getDocumentRow (db: Db, id: string): Promise<DocumentRow | null> {
  const [rows] = await db.$client.execute(GET_DOCUMENT_SQL, [id]) as unknown as [RawDocumentRow[]]
  return rows[0] !== undefined ? toDocumentRow(rows[0]) : null
}
