import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Id, NoContent, authErrors, errors, withHeaders } from '../../src/schemas/common.js'
import { CreateUpload, Document, DocumentFields, UploadTicket } from '../../src/schemas/documents.js'
import { Version } from '../../src/schemas/versions.js'
import { toDocument } from '../../src/domain/documents.js'
import { auditContext } from '../../plugins/app/audit.js'
import { notFound } from '../../src/lib/errors.js'
import tusRoutes from './tus.js'

const UploadParams = Type.Object({ uploadId: Id() }, { additionalProperties: false })

/**
 * Pre-signed uploads: the client PUTs the bytes straight to storage (S3 pre-signed URL, or a
 * signed URL on this API for local storage), then completes; only then does the document (or, for
 * an upload started with POST /documents/:id/versions/uploads, the new version) exist. The URL
 * writes to the upload's staging key; complete moves the bytes to their final key and checks them
 * there (src/domain/upload-staging.ts), so no URL can change a document. The steps are the upload
 * service's (src/domain/upload-service.ts).
 */
const uploadRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const uploads = fastify.uploadService
  // Resumable uploads (tus) at /uploads/tus; autoload loads only the index of a folder that has one.
  await fastify.register(tusRoutes)

  fastify.post('/', {
    config: { permission: 'documents:create' },
    schema: {
      tags: ['documents'],
      summary: 'Start a pre-signed upload: returns where to PUT the bytes',
      description: 'The declared `size` is reserved against your storage quota before the URL is made (413 `quota_exceeded` when it does not fit; ' +
        'for a new version, against the document owner\'s); completing settles it to the real size, cancel, failure and expiry release it.',
      body: CreateUpload,
      response: { 201: UploadTicket, ...authErrors, ...errors(413, 415) },
    },
  }, async (request, reply) => {
    return await reply.code(201).send(await uploads.start(request.user, request.body))
  })

  fastify.post('/:uploadId/complete', {
    config: { permission: 'documents:create' },
    // An empty POST is an empty set of fields.
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      tags: ['documents'],
      summary: 'Finish a pre-signed upload: checks size (and sha256), sniffs the type, creates the document (or adds the version)',
      description: 'For an upload started with POST /documents/:id/versions/uploads: no fields, also needs documents:update and write access to the document now; ' +
        'If-Match: "<version>" is honoured; 201 with the new version, or 200 with the current one when the bytes are the same.',
      params: UploadParams,
      // Optional (see preValidation): marked so for OpenAPI, where it becomes `requestBody.required: false`.
      body: Type.Optional(DocumentFields),
      headers: Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 100 })) }),
      response: {
        200: withHeaders(Version, 'ETag', 'Location'),
        201: withHeaders(Type.Union([Document, Version]), 'ETag', 'Location'),
        ...authErrors,
        ...errors(400, 404, 409, 410, 412, 413, 415),
      },
    },
  }, async (request, reply) => {
    const done = await uploads.complete(request.user, auditContext(request), request.params.uploadId, request.body ?? {}, request.headers['if-match'])
    if (done.kind === 'document') {
      return await reply.code(201).header('etag', `"${done.doc.version}"`).header('location', `/documents/${done.doc.id}`).send(toDocument(done.doc))
    }
    const { result, documentId } = done
    return await reply.code(result.created ? 201 : 200).header('etag', `"${result.documentVersion}"`)
      .header('location', `/documents/${documentId}/versions/${result.version.number}`).send(result.version)
  })

  fastify.delete('/:uploadId', {
    config: { permission: 'documents:create' },
    schema: {
      tags: ['documents'],
      summary: 'Cancel a pending pre-signed upload: its URL accepts no more bytes, those sent are deleted',
      params: UploadParams,
      response: { 204: NoContent, ...authErrors, ...errors(404) },
    },
  }, async (request, reply) => {
    if (!await uploads.cancel(request.user, request.params.uploadId)) throw notFound('Upload')
    return await reply.code(204).send(null)
  })
}

export default uploadRoutes
