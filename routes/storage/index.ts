import { Transform } from 'node:stream'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { SignedGrant } from '../../src/storage/types.js'
import { AppError, notFound } from '../../src/lib/errors.js'
import { contentDisposition, parseRange } from '../../src/lib/http.js'
import { binaryResponse, errors, errorWithHeaders, RequestHeader } from '../../src/schemas/common.js'
import { acceptUploadBytes } from '../../src/domain/upload-staging.js'
import { assertKeyServable } from '../../src/domain/document-scan.js'

const TokenParam = Type.Object({ token: Type.String({ maxLength: 4096 }) })
// The media type signed into the URL (the document's), else application/octet-stream.
const Bytes = binaryResponse(['*/*'], 'The object bytes', 'Accept-Ranges', 'Content-Disposition')
const Part = binaryResponse(['*/*'], 'The requested byte range', 'Accept-Ranges', 'Content-Disposition', 'Content-Range')

/**
 * Signed URLs for local storage: what S3 pre-signed URLs are for the S3 driver. The token carries
 * the key, method, expiry (and PUT size limit) and an HMAC; no Authorization header is needed.
 */
const storageRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const storage = fastify.storage
  // Only a driver whose signed URLs this API serves itself (local storage) has these routes.
  const signedUrls = storage.signedUrls
  if (signedUrls === undefined) return
  const verify = signedUrls.verify

  // Raw bytes of any type for PUT: keep the request stream unread for the handler.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  function grantFor (token: string, method: 'GET' | 'PUT'): SignedGrant {
    const grant = verify(token)
    if (grant === 'expired') throw new AppError(410, 'url_expired', 'This signed URL has expired; ask the API for a new one')
    if (grant === null || grant.method !== method) throw new AppError(403, 'invalid_signature', 'Invalid signed URL; use the URL exactly as the API returned it')
    return grant
  }

  fastify.get('/:token', {
    config: { public: true },
    schema: {
      tags: ['storage'],
      summary: 'Download through a signed local-storage URL',
      description: 'The object of a document that is `scanning` (409 `document_scanning`) or `infected` (403 `document_infected`) is not served, whenever the URL was signed.',
      security: [],
      params: TokenParam,
      headers: Type.Object({ range: RequestHeader.range }),
      response: { 200: Bytes, 206: Part, ...errors(403, 404, 409, 410), 416: errorWithHeaders('Content-Range') },
    },
  }, async (request, reply) => {
    const grant = grantFor(request.params.token, 'GET')
    await assertKeyServable(fastify.db, grant.key)
    const info = await storage.head(grant.key)
    if (info === null) throw notFound('Object')
    const range = parseRange(request.headers.range, info.size)
    if (range === 'unsatisfiable') {
      reply.header('content-range', `bytes */${info.size}`)
      throw new AppError(416, 'range_not_satisfiable', 'Requested range not satisfiable')
    }
    reply.header('accept-ranges', 'bytes')
    reply.type(grant.contentType ?? 'application/octet-stream')
    if (grant.filename !== undefined) reply.header('content-disposition', contentDisposition(grant.filename))
    reply.header('cache-control', 'private, no-store')
    if (range !== null) {
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${info.size}`).header('content-length', range.end - range.start + 1)
      return await reply.send(await storage.get(grant.key, range))
    }
    reply.header('content-length', info.size)
    return await reply.send(await storage.get(grant.key))
  })

  fastify.put('/:token', {
    config: {
      public: true,
      // The raw bytes are streamed by the handler, not parsed by Fastify: document them only.
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, consumes: ['application/octet-stream'], body: Type.String({ format: 'binary' }) }, url }),
    },
    schema: {
      tags: ['storage'],
      summary: 'Upload raw bytes to a signed local-storage URL (the pre-signed upload flow)',
      description: 'Send the headers the upload ticket lists: a `Content-Type` other than the signed one is refused ' +
        '(403 `content_type_mismatch`, as S3 refuses a pre-signed PUT whose signed headers differ). Only a pending ' +
        'upload accepts bytes: 409 `upload_completed` once it was completed, 410 `upload_cancelled`/`upload_expired`/' +
        '`upload_gone` once it was cancelled, discarded or expired.',
      security: [],
      params: TokenParam,
      response: { 200: Type.Object({ size: Type.Integer() }), ...errors(403, 409, 410, 413) },
    },
  }, async (request) => {
    const grant = grantFor(request.params.token, 'PUT')
    if (grant.contentType !== undefined && request.headers['content-type']?.trim().toLowerCase() !== grant.contentType.toLowerCase()) {
      throw new AppError(403, 'content_type_mismatch', `This URL accepts Content-Type ${grant.contentType} only`)
    }
    const max = grant.maxBytes ?? fastify.config.UPLOAD_MAX_BYTES
    const declared = Number(request.headers['content-length'] ?? NaN)
    if (Number.isFinite(declared) && declared > max) throw new AppError(413, 'payload_too_large', `At most ${max} bytes may be sent to this URL`)
    let seen = 0
    const limiter = new Transform({
      transform (chunk: Buffer, _enc, cb) {
        seen += chunk.length
        if (seen > max) cb(new AppError(413, 'payload_too_large', `At most ${max} bytes may be sent to this URL`))
        else cb(null, chunk)
      },
    })
    // Wired before the upload's state is read, so an abort meanwhile is not missed.
    const body = request.raw.pipe(limiter)
    request.raw.on('error', (err) => limiter.destroy(err))
    request.raw.on('aborted', () => limiter.destroy(new AppError(400, 'upload_aborted', 'The client aborted the upload')))
    // The write reports a body error; a PUT refused before writing has no one else listening.
    limiter.on('error', () => {})
    return await acceptUploadBytes(fastify.db, storage, grant.key, async () => await storage.put(grant.key, body, { contentType: grant.contentType }))
  })
}

export default storageRoutes
