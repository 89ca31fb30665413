import { createHash } from 'node:crypto'
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream'
import { and, eq, inArray, lt, ne, or } from 'drizzle-orm'
import { fileTypeFromBuffer } from 'file-type'
import type { Db } from '../db.js'
import { uploads } from '../../drizzle/schema/index.js'
import type { Storage } from '../storage/types.js'
import { AppError } from '../lib/errors.js'
import { isId } from '../lib/ids.js'

/** How many leading bytes the type sniffer sees. */
export const SNIFF_BYTES = 64 * 1024

export const payloadTooLarge = (max: number) => new AppError(413, 'payload_too_large', `The file is larger than the ${max} bytes allowed`)
export const unsupportedType = (type: string) => new AppError(415, 'unsupported_media_type', `Files of type ${type} are not accepted here`)

/** UPLOAD_ALLOWED_TYPES: comma-separated patterns, `*` / `*\/*` (anything) or `type/*` wildcards. */
export function isAllowedType (mimeType: string, allowed: string): boolean {
  const patterns = allowed.split(',').map(p => p.trim().toLowerCase()).filter(p => p !== '')
  const type = mimeType.toLowerCase()
  return patterns.some(p => p === '*' || p === '*/*' || p === type || (p.endsWith('/*') && type.startsWith(p.slice(0, -1))))
}

/** Declared text subtypes we accept when the bytes are text (the bytes cannot tell csv from plain). */
const TEXT_HINTS = /^(text\/(plain|csv|markdown|tab-separated-values|x-[\w.+-]+)|application\/(json|x-ndjson|yaml|x-yaml))$/

function looksLikeText (head: Buffer): boolean {
  if (head.length === 0 || head.includes(0)) return false
  // Up to 3 trailing bytes may be a multi-byte character cut by the peek.
  for (let cut = 0; cut <= Math.min(3, head.length - 1); cut++) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.length - cut))
      return true
    } catch { /* try a shorter prefix */ }
  }
  return false
}

/** The type of a file from its first bytes; the client's declared type only refines plain text. */
export async function sniffType (head: Buffer, declared?: string): Promise<string> {
  const found = head.length > 0 ? await fileTypeFromBuffer(head) : undefined
  if (found !== undefined) return found.mime
  if (looksLikeText(head)) {
    const hint = declared?.split(';')[0]?.trim().toLowerCase()
    return hint !== undefined && TEXT_HINTS.test(hint) ? hint : 'text/plain'
  }
  return 'application/octet-stream'
}

/** Reads up to `n` bytes without losing any: returns them and whether the stream already ended. */
export async function peek (stream: Readable, n: number): Promise<{ head: Buffer, ended: boolean }> {
  return await new Promise((resolve, reject) => {
    // A stream that already failed or was torn down (an aborted or truncated multipart body)
    // emits nothing more: waiting for an event would hang the request.
    if (stream.errored !== null) { reject(stream.errored); return }
    if (stream.destroyed && !stream.readableEnded) { reject(new Error('stream closed before its end')); return }
    const chunks: Buffer[] = []
    let len = 0
    const finish = (ended: boolean) => {
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
      resolve({ head: Buffer.concat(chunks), ended })
    }
    const onReadable = () => {
      let c: Buffer | null
      while (len < n && (c = stream.read() as Buffer | null) !== null) {
        chunks.push(c)
        len += c.length
      }
      if (len >= n) finish(false)
    }
    const onEnd = () => finish(true)
    const onError = (err: Error) => {
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('close', onClose)
      reject(err)
    }
    const onClose = () => { if (!stream.readableEnded) onError(stream.errored ?? new Error('stream closed before its end')) }
    stream.on('readable', onReadable)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
  })
}

export interface Inspected {
  mimeType: string
  /** the whole content again (peeked bytes + the rest), hashing and counting as it is read */
  body: Readable
  /** valid once `body` was read to its end */
  result: () => { size: number, sha256: string }
}

/**
 * The whole content again (the peeked head, then the rest of the source), hashing and counting
 * on the way; 413 past `maxBytes`, or at the end when `truncated()`. Lazy: the source is only
 * piped in once the stream is first read, so destroying it unread leaves the source alone.
 */
class InspectingStream extends Transform {
  // #private: storage SDKs probe a body for `size`/`length` (lib-storage trusts `Body.size`)
  readonly #hash = createHash('sha256')
  #bytes = 0
  #done = false
  #digest: string | null = null
  #started = false

  constructor (private readonly source: Readable, private readonly head: Buffer, private readonly ended: boolean,
    private readonly opts: { maxBytes: number, truncated?: () => boolean }) {
    super({ highWaterMark: 64 * 1024 })
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length
    if (this.#bytes > this.opts.maxBytes) { cb(payloadTooLarge(this.opts.maxBytes)); return }
    this.#hash.update(chunk)
    cb(null, chunk)
  }

  override _flush (cb: TransformCallback): void {
    if (this.opts.truncated?.() === true) { cb(payloadTooLarge(this.opts.maxBytes)); return }
    this.#done = true
    cb()
  }

  /** Size and sha256 of everything that passed; only once the stream was read to its end. */
  result (): { size: number, sha256: string } {
    if (!this.#done) throw new Error('content not fully read')
    this.#digest ??= this.#hash.digest('hex')
    return { size: this.#bytes, sha256: this.#digest }
  }

  override _read (size: number): void {
    if (!this.#started) {
      this.#started = true
      if (this.head.length > 0) this.write(this.head)
      // The head alone was too much: the source is left as it is (the caller answers 413).
      if (this.destroyed) return
      if (this.ended) this.end()
      // A source error destroys this stream with it, which is how the consumer learns of it.
      else pipeline(this.source, this, () => {})
    }
    super._read(size)
  }
}

/**
 * Sniffs the type from the first bytes, then hands back a stream of the whole content that
 * computes sha256 and size on the way and fails (413) past `maxBytes` or when `truncated()`.
 */
export async function inspect (source: Readable, opts: { maxBytes: number, declaredType?: string, truncated?: () => boolean }): Promise<Inspected> {
  const { head, ended } = await peek(source, SNIFF_BYTES)
  const mimeType = await sniffType(head, opts.declaredType)
  const body = new InspectingStream(source, head, ended, opts)
  return { mimeType, body, result: () => body.result() }
}

/**
 * Streams `inspected.body` to `key`; on any failure the (partial) object is deleted so nothing
 * is left behind, and the error is rethrown.
 */
export async function storeInspected (storage: Storage, key: string, inspected: Inspected): Promise<{ size: number, sha256: string }> {
  try {
    await storage.put(key, inspected.body, { contentType: inspected.mimeType })
    return inspected.result()
  } catch (err) {
    inspected.body.destroy()
    await storage.delete(key).catch(() => { /* the write never completed; nothing may exist */ })
    throw err
  }
}

// --- pre-signed upload rows ---

export type UploadRow = typeof uploads.$inferSelect

export async function insertUpload (db: Db, row: Omit<UploadRow, 'status' | 'createdAt' | 'documentId'> & { documentId?: string | null }): Promise<void> {
  await db.insert(uploads).values({ ...row, status: 'pending', createdAt: new Date() })
}

/** The caller's pending upload, or null (unknown, someone else's, already completed or cancelled). */
export async function findUpload (db: Db, userId: string, id: string): Promise<UploadRow | null> {
  if (!isId(id)) return null
  const [row] = await db.select().from(uploads).where(and(eq(uploads.id, id), eq(uploads.userId, userId), eq(uploads.status, 'pending'))).limit(1)
  return row ?? null
}

export async function deleteUpload (db: Db, id: string): Promise<void> {
  await db.delete(uploads).where(eq(uploads.id, id))
}

/**
 * Uploads whose URL expired before `before`, whatever their status (pending: abandoned; completed or
 * cancelled: kept so far only to answer late PUTs); claimed ones (`completing`) only when they
 * expired before `staleBefore`, a complete that crashed.
 */
export async function expiredUploads (db: Db, before: Date, staleBefore: Date, limit: number): Promise<UploadRow[]> {
  return await db.select().from(uploads)
    .where(or(and(ne(uploads.status, 'completing'), lt(uploads.expiresAt, before)), and(eq(uploads.status, 'completing'), lt(uploads.expiresAt, staleBefore))))
    .orderBy(uploads.expiresAt).limit(limit)
}

/** The status of each of these uploads that still has a row. */
export async function uploadStatuses (db: Db, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map()
  const rows = await db.select({ id: uploads.id, status: uploads.status }).from(uploads).where(inArray(uploads.id, ids))
  return new Map(rows.map(r => [r.id, r.status]))
}
