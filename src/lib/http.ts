/** Content-Disposition with an ASCII fallback and an RFC 5987 `filename*` for everything else (RFC 6266). */
export function contentDisposition (filename: string, type: 'attachment' | 'inline' = 'attachment'): string {
  // eslint-disable-next-line no-control-regex
  const clean = filename.replace(/[\r\n\0-\x1f\x7f]/g, '').slice(0, 255) || 'download'
  const ascii = clean.normalize('NFKD').replace(/[^\x20-\x7e]/g, '').replace(/["\\%;]/g, '_').trim() || 'download'
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `${type}; filename="${ascii}"; filename*=UTF-8''${encoded}`
}

export type RangeResult = { start: number, end: number } | 'unsatisfiable' | null

/**
 * Parses a single `bytes=` range against a size. null = no (or an ignorable multi/malformed) range:
 * serve the whole body; 'unsatisfiable' = 416.
 */
export function parseRange (header: string | undefined, size: number): RangeResult {
  if (header === undefined) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null) return null
  const [, a = '', b = ''] = m
  if (a === '' && b === '') return null
  let start: number
  let end: number
  if (a === '') {
    const suffix = Number(b)
    if (suffix === 0) return 'unsatisfiable'
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(a)
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start >= size || start > end) return 'unsatisfiable'
  return { start, end }
}

/** An If-None-Match list matching the entity tag (weak comparison, `*` matches anything). */
export function etagMatches (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return header.split(',').map(s => s.trim().replace(/^W\//, '')).some(t => t === '*' || t === etag)
}

/** A URL as shown in events and logs: no credentials, no query string (either may hold a secret). */
export function displayUrl (url: string, opts: { user?: boolean } = {}): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return '(not a valid URL)'
  }
  const user = opts.user === true && u.username !== '' ? `${decodeURIComponent(u.username)}@` : ''
  return `${u.protocol}//${user}${u.host}${u.pathname === '/' ? '' : u.pathname}${opts.user === true && u.search !== '' ? '?…' : ''}`
}

/** A request's declared body size (Content-Length), or undefined when absent or not a plain number (chunked). */
export function declaredLength (header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,16}$/.test(header.trim())) return undefined
  const n = Number(header.trim())
  return Number.isSafeInteger(n) ? n : undefined
}
