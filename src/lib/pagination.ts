import { badRequest } from './errors.js'
import { isId } from './ids.js'

/**
 * The one cursor format of every list: the sort key of the page's last row (an id, or the audit
 * log's numeric id) as base64url text. Opaque to clients; decoding anything else is a 400
 * `invalid_cursor`.
 *
 * Decoding also accepts the formats the lists used before this module (documents `d:<id>`,
 * ingestions `{"i":"<id>"}`), so a client paging across a deploy keeps its place. Cursors live
 * for one listing: this can go a release later.
 */
export const encodeCursor = (key: string | number): string => Buffer.from(String(key)).toString('base64url')

const BASE64URL = /^[A-Za-z0-9_-]{1,512}$/

function keyOf (cursor: string): string {
  if (!BASE64URL.test(cursor)) return ''
  const raw = Buffer.from(cursor, 'base64url').toString('utf8')
  if (raw.startsWith('d:')) return raw.slice(2)
  if (raw.startsWith('{')) {
    try {
      const v = JSON.parse(raw) as { i?: unknown } | null
      return typeof v?.i === 'string' ? v.i : ''
    } catch {
      return ''
    }
  }
  return raw
}

const invalid = () => badRequest('The cursor is not one this API gave out; pass nextCursor from the previous page unchanged', 'invalid_cursor')

/** The id a cursor names (canonical lower-case UUIDv7 text), or 400 invalid_cursor. */
export function decodeIdCursor (cursor: string): string {
  const id = keyOf(cursor)
  if (!isId(id)) throw invalid()
  return id
}

/** The positive integer key a cursor names (e.g. an AUTO_INCREMENT id), or 400 invalid_cursor. */
export function decodeSeqCursor (cursor: string): number {
  const s = keyOf(cursor)
  if (!/^[1-9]\d{0,15}$/.test(s)) throw invalid()
  return Number(s)
}

/**
 * One page from `limit + 1` rows read in the list's order: the first `limit`, and the cursor of
 * the last of them when there is more.
 */
export function pageOf<T> (rows: readonly T[], limit: number, key: (row: T) => string | number): { items: T[], nextCursor: string | null } {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(key(last)) : null }
}
