import type { Actor } from '../lib/actor.js'
import { decodeIdCursor, encodeCursor } from '../lib/pagination.js'
import { escapeLike } from '../lib/sql.js'
import { DOCUMENT_JSON_COLUMNS, withError, type DocumentJsonRow } from '../db/hot-paths.js'
import { and, eq, isNotNull, isNull, lt, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../db.js'
import { documents, documentShares, documentTags, uploads } from '../../drizzle/schema/index.js'
import { DOCUMENT_COLUMNS, accessOf, isReadable, toDocumentRow, type DocumentRow, type RawDocumentRow } from './document-access.js'
import { listBranches, rawFact, type BranchDriver } from './access/document-sql.js'
import { AppError, conflict, notFound } from '../lib/errors.js'
import { isId } from '../lib/ids.js'
import { MAX_TAG_LENGTH, MAX_TAGS, type DocumentDto } from '../schemas/documents.js'

export const originalKey = (id: string): string => `documents/${id}/original`
export const thumbnailKey = (id: string): string => `documents/${id}/thumbnail.webp`

/** Types sharp turns into thumbnails: these documents start as `processing`. */
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
  }
  if (row.status === 'failed' && row.error !== null) dto.error = row.error
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
 * transaction (409 if it is no longer claimed).
 */
export async function insertDocument (db: Db, input: NewDocument, opts: { claimUploadId?: string } = {}): Promise<DocumentRow> {
  const now = new Date()
  const row: DocumentRow = {
    ...input,
    status: wantsThumbnail(input.mimeType) ? 'processing' : 'ready',
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
  }
  await db.transaction(async (tx) => {
    if (opts.claimUploadId !== undefined) {
      const [res] = await tx.update(uploads).set({ status: 'completed' }).where(and(eq(uploads.id, opts.claimUploadId), eq(uploads.status, 'completing')))
      if (res.affectedRows !== 1) throw conflict('This upload was already completed', 'upload_completed')
    }
    await tx.insert(documents).values(row)
    if (row.tags.length > 0) await tx.insert(documentTags).values(row.tags.map(tag => ({ documentId: row.id, tag })))
  })
  return row
}

// The document as JSON text built by MySQL (DOCUMENT_JSON_COLUMNS) lives with the other hand-written SQL.
const JSON_COLUMNS = DOCUMENT_JSON_COLUMNS
const LIST_COLUMNS = `d.id, ${JSON_COLUMNS}`
type JsonRow = DocumentJsonRow
interface ListRow extends JsonRow { id: string }

// GET /documents/:id: the access columns and the document as JSON text, in one prepared statement.
const READ_JSON_SQL = `SELECT d.owner_id, d.visibility, d.deleted_at IS NOT NULL AS trashed, d.version, s.access AS share_access, ${JSON_COLUMNS} ` +
  'FROM documents d LEFT JOIN document_shares s ON s.document_id = d.id AND s.user_id = ? WHERE d.id = ? LIMIT 1'

/**
 * GET /documents/:id: the document as JSON text (as `toDocument` and the Document schema give it,
 * built by MySQL like the listing's rows) and its version for the ETag; 404 by the same rule as
 * `requireDocument(..., 'read', 'any')`.
 */
export async function readDocumentJson (db: Db, actor: Actor, id: string): Promise<{ version: number, json: string }> {
  if (!isId(id)) throw notFound('Document')
  const [rows] = await db.$client.execute(READ_JSON_SQL, [actor.id, id]) as unknown as [Array<JsonRow & { owner_id: string, visibility: string, trashed: number | string, version: number, share_access: 'read' | 'write' | null }>]
  const r = rows[0]
  if (r === undefined || !isReadable(accessOf(actor, { ownerId: r.owner_id, visibility: r.visibility }, r.share_access), Number(r.trashed) === 1)) throw notFound('Document')
  return { version: r.version, json: withError(r) }
}

export interface ListFilters {
  limit: number
  cursor?: string
  q?: string
  tag?: string
  mimeType?: string
  ownerId?: string
  status?: string
  trashed: boolean
}

export { encodeCursor } from '../lib/pagination.js'
export const decodeCursor = decodeIdCursor

const SHARES_OF_USER = 'document_shares s FORCE INDEX (document_shares_user_idx) STRAIGHT_JOIN documents d FORCE INDEX (PRIMARY) ON d.id = s.document_id'
/**
 * Where a listing branch driven by a fact of the rule walks (listBranches): mine along
 * documents_owner_idx, internal ones along documents_visibility_idx, shared with me newest first
 * along document_shares_user_idx. `cond` takes the actor's id.
 */
const BRANCH_SOURCES: Record<BranchDriver, { from: (hinted: boolean) => string, cond: string, byActor: boolean, viaShares: boolean }> = {
  owner: { from: h => `documents d${h ? ' FORCE INDEX (documents_owner_idx)' : ''}`, cond: 'd.owner_id = ?', byActor: true, viaShares: false },
  internal: { from: h => `documents d${h ? ' FORCE INDEX (documents_visibility_idx)' : ''}`, cond: "d.visibility = 'internal'", byActor: false, viaShares: false },
  shared: { from: () => SHARES_OF_USER, cond: 's.user_id = ?', byActor: true, viaShares: true },
  writeShare: { from: () => SHARES_OF_USER, cond: "s.user_id = ? AND s.access = 'write'", byActor: true, viaShares: true },
}

/**
 * The documents `actor` may see, newest first, filtered in SQL by the access rule. The trash
 * lists only what the actor could restore (owner, write share, documents:manage).
 *
 * Written in SQL for speed: an `owner OR internal OR shared` condition cannot use the per-branch
 * indexes and scans many rows per page, so unless the actor sees everything the query is a
 * UNION ALL of disjoint branches (mine / others' internal ones / others' private ones shared with
 * me; in the trash: mine / others' shared with me for writing), each walking its own index
 * newest first for one page of ids, merged and cut to the page; then the page's rows are read,
 * as JSON text (JSON_COLUMNS).
 */
export async function listDocuments (db: Db, actor: Actor, f: ListFilters): Promise<{ items: string[], nextCursor: string | null }> {
  const n = Math.trunc(f.limit) + 1
  const where = [f.trashed ? 'd.deleted_at IS NOT NULL' : 'd.deleted_at IS NULL']
  const params: string[] = []
  const cursor = f.cursor !== undefined ? decodeCursor(f.cursor) : undefined
  if (cursor !== undefined) { where.push('d.id < ?'); params.push(cursor) }
  if (f.q !== undefined) {
    const pattern = `%${escapeLike(f.q)}%`
    where.push('(d.title LIKE ? OR d.description LIKE ? OR d.filename LIKE ?)')
    params.push(pattern, pattern, pattern)
  }
  if (f.tag !== undefined) {
    where.push('EXISTS (SELECT 1 FROM document_tags t WHERE t.document_id = d.id AND t.tag = ?)')
    params.push(normalizeTag(f.tag))
  }
  if (f.mimeType !== undefined) {
    where.push(f.mimeType.endsWith('/*') ? 'd.mime_type LIKE ?' : 'd.mime_type = ?')
    params.push(f.mimeType.endsWith('/*') ? `${escapeLike(f.mimeType.slice(0, -1))}%` : f.mimeType)
  }
  if (f.ownerId !== undefined) { where.push('d.owner_id = ?'); params.push(f.ownerId) }
  if (f.status !== undefined) { where.push('d.status = ?'); params.push(f.status) }
  const filters = where.join(' AND ')

  let query: string
  const args: string[] = []
  const plan = listBranches(actor, f.trashed)
  if (plan.length === 0) return { items: [], nextCursor: null }
  if (plan === 'all') {
    query = `SELECT ${LIST_COLUMNS} FROM documents d WHERE ${filters} ORDER BY d.id DESC LIMIT ${n}`
    args.push(...params)
  } else {
    // Index hints for the common listing (not the trash, no owner filter): each branch walks its
    // index in id order anyway, and the hints spare MySQL the range estimates over every index of
    // both tables (measured: a quarter of the statement's server CPU).
    const hinted = !f.trashed && f.ownerId === undefined
    const branches = plan.map(({ drive, also, not }) => {
      const source = BRANCH_SOURCES[drive]
      const conds = [source.cond]
      const condParams = source.byActor ? [actor.id] : []
      if (source.viaShares && cursor !== undefined) { conds.push('s.document_id < ?'); condParams.push(cursor) }
      for (const [fact, negated] of [...also.map(x => [x, false] as const), ...not.map(x => [x, true] as const)]) {
        const r = rawFact(fact, actor.id, negated)
        conds.push(r.sql)
        condParams.push(...r.params)
      }
      args.push(...condParams, ...params)
      return `(SELECT d.id FROM ${source.from(hinted)} WHERE ${conds.join(' AND ')} AND ${filters} ORDER BY ${source.viaShares ? 's.document_id' : 'd.id'} DESC LIMIT ${n})`
    })
    // ids first (the branches mostly walk covering indexes), then only the page's rows, sorted
    // here (a filesort of the joined page cost MySQL more than sorting 21 rows in JS)
    query = `SELECT ${LIST_COLUMNS} FROM (${branches.join(' UNION ALL ')} ORDER BY id DESC LIMIT ${n}) page ` +
      'STRAIGHT_JOIN documents d FORCE INDEX (PRIMARY) ON d.id = page.id'
  }
  // The plain listing (no filter) as a server-side prepared statement: a few fixed texts (one per
  // limit and cursor presence), cached per connection. Filtered ones vary too much to prepare each.
  const plain = where.length === (cursor !== undefined ? 2 : 1)
  const [raw] = await (plain ? db.$client.execute(query, args) : db.$client.query(query, args)) as unknown as [ListRow[]]
  const rows = raw.sort((a, b) => a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
  const page = rows.slice(0, f.limit)
  const last = page[page.length - 1]
  const items = page.map(withError)
  return { items, nextCursor: rows.length > f.limit && last !== undefined ? encodeCursor(last.id) : null }
}

/** Parses If-Match: undefined = no precondition, 'any' = `*`, else the versions it names (a list is fine). */
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
    return row ?? null
  })
}

/** Moves to the trash (deleted=true) or back out of it. False when it was not in the expected state. */
export async function setTrashed (db: DbOrTx, id: string, trashed: boolean): Promise<boolean> {
  const now = new Date()
  const [res] = await db.update(documents)
    .set({ deletedAt: trashed ? now : null, updatedAt: now, version: sql`${documents.version} + 1` })
    .where(and(eq(documents.id, id), trashed ? isNull(documents.deletedAt) : isNotNull(documents.deletedAt)))
  return res.affectedRows === 1
}

/** Deletes the row, its tags and shares; returns the storage keys the caller must delete (by job). */
export async function deleteDocumentRow (db: Db, id: string): Promise<string[] | null> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.select({ storageKey: documents.storageKey, thumbnailKey: documents.thumbnailKey }).from(documents).where(eq(documents.id, id)).for('update')
    if (row === undefined) return null
    await tx.delete(documentTags).where(eq(documentTags.documentId, id))
    await tx.delete(documentShares).where(eq(documentShares.documentId, id))
    await tx.delete(documents).where(eq(documents.id, id))
    return [row.storageKey, thumbnailKey(id), ...(row.thumbnailKey !== null && row.thumbnailKey !== thumbnailKey(id) ? [row.thumbnailKey] : [])]
  })
}

/** Trashed before `before`, oldest first: what the purge job deletes. */
export async function trashedBefore (db: Db, before: Date, limit: number): Promise<Array<{ id: string, ownerId: string }>> {
  return await db.select({ id: documents.id, ownerId: documents.ownerId }).from(documents)
    .where(and(isNotNull(documents.deletedAt), lt(documents.deletedAt, before)))
    .orderBy(documents.deletedAt, documents.id).limit(limit)
}

export { deleteShare, listShares, putShare, userExists } from './document-shares.js'

/** Thumbnail job results: processing -> ready with the thumbnail, or -> failed with the error. */
export async function finishProcessing (db: Db, id: string, result: { ok: true, thumbnailKey: string, width: number, height: number, metadata: Record<string, unknown> } | { ok: false, error: string }): Promise<void> {
  const now = new Date()
  const set: Partial<DocumentRow> = result.ok
    ? { status: 'ready', thumbnailKey: result.thumbnailKey, thumbnailWidth: result.width, thumbnailHeight: result.height, metadata: result.metadata, error: null }
    : { status: 'failed', error: result.error.slice(0, 2000) }
  await db.update(documents).set({ ...set, updatedAt: now, version: sql`${documents.version} + 1` })
    .where(and(eq(documents.id, id), eq(documents.status, 'processing')))
}

const GET_DOCUMENT_SQL = `SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ? LIMIT 1`

/** One row by id, whatever its state (the dispatch and thumbnail jobs, restore). */
export async function getDocumentRow (db: Db, id: string): Promise<DocumentRow | null> {
  const [rows] = await db.$client.execute(GET_DOCUMENT_SQL, [id]) as unknown as [RawDocumentRow[]]
  return rows[0] !== undefined ? toDocumentRow(rows[0]) : null
}
