import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox'
import { Description, Document, DocumentPatch, ListQuery, Title, Visibility } from '../../src/schemas/documents.js'
import { authErrors, errors, IdParam, NoContent, Page, RequestHeader, withHeaders } from '../../src/schemas/common.js'
import { expectedVersions, listDocuments, readDocumentJson, toDocument } from '../../src/domain/documents.js'
import { AppError } from '../../src/lib/errors.js'
import { auditContext } from '../../plugins/app/audit.js'
import { declaredLength, etagMatches } from '../../src/lib/http.js'

const MultipartDocumentBody = Type.Object({
  file: Type.String({ format: 'binary', description: 'the document (exactly one file part)' }),
  title: Type.Optional(Title),
  description: Type.Optional(Description),
  tags: Type.Optional(Type.Array(Type.String(), { description: 'repeat the field for several tags' })),
  visibility: Type.Optional(Visibility),
}, { additionalProperties: false })

const documentRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, documentService: documents } = fastify

  fastify.get('/', {
    config: { permission: 'documents:read', replicaRead: true },
    schema: {
      tags: ['documents'],
      summary: 'Documents visible to me, newest first (cursor-paginated)',
      querystring: ListQuery,
      response: { 200: Page(Document), ...authErrors },
    },
  }, async (request, reply) => {
    // The items arrive as JSON text matching the Document schema (see listDocuments): joined, not
    // re-serialized (Fastify sends a string with a JSON content type as it is; the cast is for the
    // type provider, which only knows objects).
    const page = await fastify.reads.read(async db => await listDocuments(db, request.user, request.query), request.readHint)
    const body = `{"items":[${page.items.join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}` as unknown as Static<ReturnType<typeof Page<typeof Document>>>
    return await reply.type('application/json; charset=utf-8').send(body)
  })

  fastify.post('/', {
    config: {
      permission: 'documents:create',
      // The multipart stream is read by the handler, not validated by Fastify: document its parts only.
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: MultipartDocumentBody }, url }),
    },
    schema: {
      tags: ['documents'],
      summary: 'Upload a document (multipart/form-data)',
      description: 'One `file` part plus optional fields `title`, `description`, `tags` (repeatable) and `visibility`, before or after the file. ' +
        'The file streams to storage; its type is sniffed from its bytes. 413 when larger than UPLOAD_MAX_BYTES, 415 when its type is not allowed. ' +
        'The request\'s Content-Length (UPLOAD_MAX_BYTES without one) is reserved against your storage quota before any byte is stored, then settled to the file\'s size: 413 `quota_exceeded` when it does not fit.',
      consumes: ['multipart/form-data'],
      response: { 201: withHeaders(Document, 'ETag', 'Location'), ...authErrors, ...errors(413, 415) },
    },
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new AppError(415, 'unsupported_media_type', 'Send the document as multipart/form-data')
    const doc = await fastify.uploadService.createFromParts(request.user, auditContext(request), request.parts(), declaredLength(request.headers['content-length']))
    return await reply.code(201).header('etag', `"${doc.version}"`).header('location', `/documents/${doc.id}`).send(toDocument(doc))
  })

  fastify.get('/:id', {
    config: { permission: 'documents:read' },
    schema: {
      tags: ['documents'],
      summary: 'One document (trashed ones only for those who may restore them); ETag = "<version>", If-None-Match gives 304',
      params: IdParam,
      headers: Type.Object({ 'if-none-match': RequestHeader.ifNoneMatch }),
      response: { 200: withHeaders(Document, 'ETag'), 304: withHeaders(Type.Null({ description: 'Not modified: If-None-Match matched the ETag' }), 'ETag'), ...authErrors, ...errors(404) },
    },
  }, async (request, reply) => {
    // The document arrives as JSON text matching the Document schema (see readDocumentJson): sent as it is.
    const { version, json } = await readDocumentJson(db, request.user, request.params.id)
    const etag = `"${version}"`
    reply.header('etag', etag).header('cache-control', 'private, no-cache')
    if (etagMatches(request.headers['if-none-match'], etag)) return await reply.code(304).send(null)
    return await reply.type('application/json; charset=utf-8').send(json as unknown as Static<typeof Document>)
  })

  fastify.patch('/:id', {
    config: { permission: 'documents:update' },
    schema: {
      tags: ['documents'],
      summary: 'Change title, description, tags or visibility (If-Match: "<version>" honoured)',
      description: 'Writers (owner, write share, documents:manage) change title, description and tags; changing `visibility` takes share rights (the owner with documents:share, or documents:manage), else 403 `forbidden`.',
      params: IdParam,
      body: DocumentPatch,
      headers: Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 100 })) }),
      response: { 200: withHeaders(Document, 'ETag'), ...authErrors, ...errors(404, 409, 412) },
    },
  }, async (request, reply) => {
    const updated = await documents.update(request.user, auditContext(request), request.params.id, request.body, expectedVersions(request.headers['if-match']))
    return await reply.header('etag', `"${updated.version}"`).send(toDocument(updated))
  })

  fastify.delete('/:id', {
    config: { permission: 'documents:delete' },
    schema: {
      tags: ['documents'],
      summary: 'Move to the trash, or with permanent=true delete for good (documents:manage, or the owner for trashed documents)',
      params: IdParam,
      querystring: Type.Object({ permanent: Type.Boolean({ default: false }) }, { additionalProperties: false }),
      response: { 204: NoContent, ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    if (request.query.permanent) await documents.purge(request.user, auditContext(request), request.params.id)
    else await documents.trash(request.user, auditContext(request), request.params.id)
    return await reply.code(204).send(null)
  })

  fastify.post('/:id/restore', {
    config: { permission: 'documents:delete' },
    schema: {
      tags: ['documents'],
      summary: 'Take a document out of the trash',
      params: IdParam,
      response: { 200: withHeaders(Document, 'ETag'), ...authErrors, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    const restored = await documents.restore(request.user, auditContext(request), request.params.id)
    return await reply.header('etag', `"${restored.version}"`).send(toDocument(restored))
  })
}

export default documentRoutes
