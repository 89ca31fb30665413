import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Id, NoContent, authErrors, errors, withHeaders } from '../../src/schemas/common.js'
import { CreateUpload, Document, DocumentFields, UploadTicket } from '../../src/schemas/documents.js'
import { findUpload, insertUpload, isAllowedType, payloadTooLarge, unsupportedType } from '../../src/domain/uploads.js'
import { cancelUpload, claimUpload, discardUpload, promoteUpload, stagingKey } from '../../src/domain/upload-staging.js'
import { originalKey, toDocument } from '../../src/domain/documents.js'
import { cleanFilename } from '../../src/domain/document-create.js'
import { auditContext } from '../../plugins/app/audit.js'
import { AppError, conflict, notFound } from '../../src/lib/errors.js'
import { newId } from '../../src/lib/ids.js'

const UploadParams = Type.Object({ uploadId: Id() }, { additionalProperties: false })

/**
 * Pre-signed uploads: the client PUTs the bytes straight to storage (S3 pre-signed URL, or a
 * signed URL on this API for local storage), then completes; only then does the document exist.
 * The URL writes to the upload's staging key; complete moves the bytes to the document's key and
 * checks them there (src/domain/upload-staging.ts), so no URL can change a document.
 */
const uploadRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, storage, config } = fastify

  fastify.post('/', {
    config: { permission: 'documents:create' },
    schema: {
      tags: ['documents'],
      summary: 'Start a pre-signed upload: returns where to PUT the bytes',
      body: CreateUpload,
      response: { 201: UploadTicket, ...authErrors, ...errors(413, 415) },
    },
  }, async (request, reply) => {
    const { filename, mimeType, size, sha256 } = request.body
    if (size > config.UPLOAD_MAX_BYTES) throw payloadTooLarge(config.UPLOAD_MAX_BYTES)
    const type = mimeType.toLowerCase()
    if (!isAllowedType(type, config.UPLOAD_ALLOWED_TYPES)) throw unsupportedType(type)
    const id = newId()
    const key = stagingKey(id)
    const expiresAt = new Date(Date.now() + config.UPLOAD_URL_TTL * 1000)
    await insertUpload(db, { id, userId: request.user.id, filename: cleanFilename(filename), mimeType: type, size, sha256: sha256?.toLowerCase() ?? null, storageKey: key, expiresAt })
    const signed = await storage.presignPut(key, { expiresIn: config.UPLOAD_URL_TTL, contentType: type, contentLength: size })
    return await reply.code(201).send({ uploadId: id, method: 'PUT' as const, url: signed.url, headers: signed.headers, expiresAt: expiresAt.toISOString() })
  })

  fastify.post('/:uploadId/complete', {
    config: { permission: 'documents:create' },
    // An empty POST is an empty set of fields.
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      tags: ['documents'],
      summary: 'Finish a pre-signed upload: checks size (and sha256), sniffs the type, creates the document',
      params: UploadParams,
      // Optional (see preValidation): marked so for OpenAPI, where it becomes `requestBody.required: false`.
      body: Type.Optional(DocumentFields),
      response: { 201: withHeaders(Document, 'ETag', 'Location'), ...authErrors, ...errors(404, 409, 410, 413, 415) },
    },
  }, async (request, reply) => {
    const up = await findUpload(db, request.user.id, request.params.uploadId)
    if (up === null) throw notFound('Upload')
    if (up.expiresAt.getTime() <= Date.now()) throw new AppError(410, 'upload_expired', 'This upload expired; start a new one')
    if (!await claimUpload(db, up)) throw conflict('This upload was already completed', 'upload_completed')
    const target = originalKey(up.id)
    const { mimeType, size, sha256 } = await promoteUpload(db, storage, up, target, config.UPLOAD_ALLOWED_TYPES)
    let doc
    try {
      doc = await fastify.documentService.create(request.user, auditContext(request), { id: up.id, filename: up.filename, mimeType, size, sha256 }, request.body, { claimUploadId: up.id, via: 'presigned' })
    } catch (err) {
      await discardUpload(db, storage, up, target).catch((e: unknown) => request.log.error({ err: e, uploadId: up.id }, 'could not discard an upload'))
      throw err
    }
    return await reply.code(201).header('etag', `"${doc.version}"`).header('location', `/documents/${doc.id}`).send(toDocument(doc))
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
    if (!await cancelUpload(db, storage, request.user.id, request.params.uploadId)) throw notFound('Upload')
    return await reply.code(204).send(null)
  })
}

export default uploadRoutes
