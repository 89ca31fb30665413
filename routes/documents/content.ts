import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { authErrors, binaryResponse, errors, IdParam } from '../../src/schemas/common.js'
import { requireDocument } from '../../src/domain/document-access.js'
import { assertContentAvailable } from '../../src/domain/document-scan.js'
import { notFound } from '../../src/lib/errors.js'
import { contentSchema, sendStored } from '../../src/http/object-response.js'
import { auditContext } from '../../plugins/app/audit.js'

const contentRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, storage, config } = fastify

  fastify.get('/:id/content', {
    // writes the download's audit row: published for the lists (plugins/core/db.ts)
    config: { permission: 'documents:read', writes: true },
    schema: {
      tags: ['documents'],
      summary: 'Download the bytes (Range, If-None-Match; redirect=true gives a pre-signed URL on S3)',
      description: 'Refused while the document is `scanning` (409 `document_scanning`: retry once it is ready) and for good once it is `infected` (403 `document_infected`).',
      params: IdParam,
      querystring: contentSchema.querystring,
      headers: contentSchema.headers,
      response: { ...contentSchema.responses, ...authErrors },
    },
  }, async (request, reply) => {
    const { doc } = await requireDocument(db, request.user, request.params.id, 'read', 'any')
    assertContentAvailable(doc)
    return await sendStored(request, reply, storage, config.DOWNLOAD_URL_TTL, doc,
      async (kind, range) => await fastify.documentService.downloaded(auditContext(request), doc.id, kind, range))
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
