import type { Actor } from '../lib/actor.js'
import { decodeIdCursor, encodeCursor } from '../lib/pagination.js'
import { likeContains, likePrefix } from '../lib/sql.js'
import { DOCUMENT_JSON_COLUMNS, withError, type DocumentJsonRow } from '../db/hot-paths.js'
import type { Db } from '../db.js'
import { accessOf, isReadable } from './document-access.js'
import { listBranches, rawFact, type BranchDriver } from './access/document-sql.js'
import { notFound } from '../lib/errors.js'
import { isId } from '../lib/ids.js'
import { normalizeTag } from './documents.js'

/** The measured read paths (npm run bench): a document, and the listing, as JSON text MySQL builds. */

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
  indexState?: string
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
    const pattern = likeContains(f.q)
    where.push('(d.title LIKE ? OR d.description LIKE ? OR d.filename LIKE ?)')
    params.push(pattern, pattern, pattern)
  }
  if (f.tag !== undefined) {
    where.push('EXISTS (SELECT 1 FROM document_tags t WHERE t.document_id = d.id AND t.tag = ?)')
    params.push(normalizeTag(f.tag))
  }
  if (f.mimeType !== undefined) {
    where.push(f.mimeType.endsWith('/*') ? 'd.mime_type LIKE ?' : 'd.mime_type = ?')
    params.push(f.mimeType.endsWith('/*') ? likePrefix(f.mimeType.slice(0, -1)) : f.mimeType)
  }
  if (f.ownerId !== undefined) { where.push('d.owner_id = ?'); params.push(f.ownerId) }
  if (f.status !== undefined) { where.push('d.status = ?'); params.push(f.status) }
  if (f.indexState !== undefined) { where.push('d.index_state = ?'); params.push(f.indexState) }
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
    // (an index state filter walks documents_index_state_idx instead where it is the narrower one)
    const hinted = !f.trashed && f.ownerId === undefined && f.indexState === undefined
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
