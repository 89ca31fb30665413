import { Type } from '@sinclair/typebox'
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { binaryResponse, errors, errorWithHeaders, RequestHeader, withHeaders } from '../schemas/common.js'
import { StorageNotFound, type ByteRange, type Storage } from '../storage/types.js'
import { AppError, notFound } from '../lib/errors.js'
import { contentDisposition, etagMatches, parseRange } from '../lib/http.js'

/*
 * Serving stored bytes over HTTP, the one way every content route does it (a document's current
 * content, one of its versions): ETag = "<sha256>", If-None-Match -> 304, Range and If-Range ->
 * 206/416, `?redirect=true` -> 302 to a short-lived URL when the storage offers one
 * (Storage.downloadRedirect), else the bytes streamed with the object's own type.
 */

// The document's own media type (its mimeType): any type the server accepted at upload.
const Bytes = binaryResponse(['*/*'], 'The file bytes, as the document\'s `mimeType`', 'ETag', 'Accept-Ranges', 'Content-Disposition')
const Part = binaryResponse(['*/*'], 'The requested byte range', 'ETag', 'Accept-Ranges', 'Content-Disposition', 'Content-Range')
const Redirect = withHeaders(Type.Null({ description: 'Redirect to a short-lived pre-signed URL (in Location)' }), 'Location', 'ETag', 'Accept-Ranges')
const NotModified = withHeaders(Type.Null({ description: 'Not modified: If-None-Match matched the ETag' }), 'ETag', 'Accept-Ranges')

/** The route schema pieces of a content route (its params and summary are the route's own). */
export const contentSchema = {
  querystring: Type.Object({ redirect: Type.Boolean({ default: false }) }, { additionalProperties: false }),
  headers: Type.Object({ range: RequestHeader.range, 'if-range': RequestHeader.ifRange, 'if-none-match': RequestHeader.ifNoneMatch }),
  responses: { 200: Bytes, 206: Part, 302: Redirect, 304: NotModified, ...errors(403, 404, 409), 416: errorWithHeaders('Content-Range', 'ETag', 'Accept-Ranges') },
}

export interface StoredBytes { storageKey: string, size: number, sha256: string, mimeType: string, filename: string }

export interface ContentRequest {
  query: { redirect: boolean }
  headers: { range?: string, 'if-range'?: string, 'if-none-match'?: string }
  log: FastifyBaseLogger
}

/** How it was answered, for the audit: `redirect`, `full` or `range` (with the range). */
export type Served = (kind: 'redirect' | 'full' | 'range', range?: [number, number]) => Promise<void>

/**
 * Answers a content request for `obj` (already loaded under the access rule). `served` runs once
 * the answer is decided (not for 304 or 416). `what` names the object in a 404 message.
 */
export async function sendStored (request: ContentRequest, reply: FastifyReply, storage: Storage, ttl: number, obj: StoredBytes, served: Served, what = 'Document content'): Promise<FastifyReply> {
  const etag = `"${obj.sha256}"`
  reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, no-cache')
  if (etagMatches(request.headers['if-none-match'], etag)) return await reply.code(304).send(null)

  // If-Range: the range only applies to the representation the client has (strong comparison;
  // Quire sends no Last-Modified, so a date never matches): otherwise the whole body, 200.
  const ifRange = request.headers['if-range']
  const range = parseRange(ifRange === undefined || String(ifRange).trim() === etag ? request.headers.range : undefined, obj.size)
  const bounds = (r: ByteRange | null | 'unsatisfiable'): [number, number] | undefined => r !== null && r !== 'unsatisfiable' ? [r.start, r.end] : undefined
  if (request.query.redirect) {
    const url = await storage.downloadRedirect(obj.storageKey, { expiresIn: ttl, filename: obj.filename, contentType: obj.mimeType })
    if (url !== null) {
      await served('redirect', bounds(range))
      return await reply.header('cache-control', 'no-store').redirect(url, 302)
    }
  }
  if (range === 'unsatisfiable') {
    throw new AppError(416, 'range_not_satisfiable', `The document has ${obj.size} bytes`, undefined, { 'content-range': `bytes */${obj.size}` })
  }
  let body
  try {
    body = await storage.get(obj.storageKey, range ?? undefined)
  } catch (err) {
    if (err instanceof StorageNotFound) {
      request.log.error({ key: obj.storageKey }, 'a row without its object')
      throw notFound(what)
    }
    throw err
  }
  await served(range === null ? 'full' : 'range', bounds(range))
  reply.type(obj.mimeType).header('content-disposition', contentDisposition(obj.filename)).header('x-content-type-options', 'nosniff')
  if (range !== null) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${obj.size}`).header('content-length', range.end - range.start + 1)
  } else {
    reply.header('content-length', obj.size)
  }
  return await reply.send(body)
}
