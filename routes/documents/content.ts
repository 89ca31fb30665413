import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { authErrors, binaryResponse, errors, errorWithHeaders, IdParam, RequestHeader, withHeaders } from '../../src/schemas/common.js'
import { requireDocument } from '../../src/domain/document-access.js'
import { assertContentAvailable } from '../../src/domain/document-scan.js'
import { AppError, notFound } from '../../src/lib/errors.js'
import { contentDisposition, etagMatches, parseRange } from '../../src/lib/http.js'
import { StorageNotFound } from '../../src/storage/types.js'
import { auditContext } from '../../plugins/app/audit.js'

// The document's own media type (its mimeType): any type the server accepted at upload.
const Bytes = binaryResponse(['*/*'], 'The file bytes, as the document\'s `mimeType`', 'ETag', 'Accept-Ranges', 'Content-Disposition')
const Part = binaryResponse(['*/*'], 'The requested byte range', 'ETag', 'Accept-Ranges', 'Content-Disposition', 'Content-Range')
const Redirect = withHeaders(Type.Null({ description: 'Redirect to a short-lived pre-signed URL (in Location)' }), 'Location', 'ETag', 'Accept-Ranges')
const NotModified = withHeaders(Type.Null({ description: 'Not modified: If-None-Match matched the ETag' }), 'ETag', 'Accept-Ranges')

const contentRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, storage, config } = fastify

  fastify.get('/:id/content', {
    config: { permission: 'documents:read' },
    schema: {
      tags: ['documents'],
      summary: 'Download the bytes (Range, If-None-Match; redirect=true gives a pre-signed URL on S3)',
      description: 'Refused while the document is `scanning` (409 `document_scanning`: retry once it is ready) and for good once it is `infected` (403 `document_infected`).',
      params: IdParam,
      querystring: Type.Object({ redirect: Type.Boolean({ default: false }) }, { additionalProperties: false }),
      headers: Type.Object({ range: RequestHeader.range, 'if-range': RequestHeader.ifRange, 'if-none-match': RequestHeader.ifNoneMatch }),
      response: { 200: Bytes, 206: Part, 302: Redirect, 304: NotModified, ...authErrors, ...errors(404, 409), 416: errorWithHeaders('Content-Range', 'ETag', 'Accept-Ranges') },
    },
  }, async (request, reply) => {
    const { doc } = await requireDocument(db, request.user, request.params.id, 'read', 'any')
    assertContentAvailable(doc)
    const etag = `"${doc.sha256}"`
    reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, no-cache')
    if (etagMatches(request.headers['if-none-match'], etag)) return await reply.code(304).send(null)

    // If-Range: the range only applies to the representation the client has (strong comparison;
    // Quire sends no Last-Modified, so a date never matches): otherwise the whole body, 200.
    const ifRange = request.headers['if-range']
    const range = parseRange(ifRange === undefined || String(ifRange).trim() === etag ? request.headers.range : undefined, doc.size)
    const audit = async (kind: string) => await fastify.documentService.downloaded(auditContext(request), doc.id, kind, range !== null && range !== 'unsatisfiable' ? [range.start, range.end] : undefined)
    if (request.query.redirect && storage.driver === 's3') {
      const url = await storage.presignGet(doc.storageKey, { expiresIn: config.DOWNLOAD_URL_TTL, filename: doc.filename, contentType: doc.mimeType })
      await audit('redirect')
      return await reply.header('cache-control', 'no-store').redirect(url, 302)
    }
    if (range === 'unsatisfiable') {
      throw new AppError(416, 'range_not_satisfiable', `The document has ${doc.size} bytes`, undefined, { 'content-range': `bytes */${doc.size}` })
    }
    let body
    try {
      body = await storage.get(doc.storageKey, range ?? undefined)
    } catch (err) {
      if (err instanceof StorageNotFound) {
        request.log.error({ documentId: doc.id, key: doc.storageKey }, 'document row without its object')
        throw notFound('Document content')
      }
      throw err
    }
    await audit(range === null ? 'full' : 'range')
    reply.type(doc.mimeType).header('content-disposition', contentDisposition(doc.filename)).header('x-content-type-options', 'nosniff')
    if (range !== null) {
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${doc.size}`).header('content-length', range.end - range.start + 1)
    } else {
      reply.header('content-length', doc.size)
    }
    return await reply.send(body)
  })

  fastify.get('/:id/thumbnail', {
    config: { permission: 'documents:read' },
    schema: {
      tags: ['documents'],
      summary: 'The webp thumbnail of an image document (404 when it has none)',
      params: IdParam,
      response: { 200: binaryResponse(['image/webp'], 'The webp thumbnail', 'ETag'), ...authErrors, ...errors(404) },
    },
  }, async (request, reply) => {
    const { doc } = await requireDocument(db, request.user, request.params.id, 'read', 'any')
    if (doc.thumbnailKey === null) throw notFound('Thumbnail')
    const info = await storage.head(doc.thumbnailKey)
    if (info === null) throw notFound('Thumbnail')
    return await reply.type('image/webp').header('content-length', info.size).header('cache-control', 'private, max-age=300')
      .header('etag', `"t${doc.version}"`).send(await storage.get(doc.thumbnailKey))
  })
}

export default contentRoutes
