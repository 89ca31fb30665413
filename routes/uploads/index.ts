import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { authErrors, errors, withHeaders } from '../../src/schemas/common.js'
import { CreateUpload, Document, DocumentFields, UploadTicket } from '../../src/schemas/documents.js'
import { deleteUpload, findUpload, insertUpload, inspect, isAllowedType, payloadTooLarge, unsupportedType, type UploadRow } from '../../src/domain/uploads.js'
import { originalKey, toDocument } from '../../src/domain/documents.js'
import { cleanFilename, createDocumentRecord } from '../../src/domain/document-create.js'
import { AppError, conflict, notFound } from '../../src/lib/errors.js'
import { newId } from '../../src/lib/ids.js'

const UploadParams = Type.Object({ uploadId: Type.String({ maxLength: 64 }) }, { additionalProperties: false })

/**
 * Pre-signed uploads: the client PUTs the bytes straight to storage (S3 pre-signed URL, or a
 * signed URL on this API for local storage), then completes; only then does the document exist.
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
    const key = originalKey(id)
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
    const info = await storage.head(up.storageKey)
    if (info === null) throw conflict('No bytes were uploaded to the URL yet', 'upload_incomplete')
    if (info.size !== up.size) {
      await discard(up)
      throw new AppError(400, 'size_mismatch', `Expected ${up.size} bytes, received ${info.size}; the upload was discarded`)
    }
    const inspected = await inspect(await storage.get(up.storageKey), { maxBytes: up.size, declaredType: up.mimeType })
    if (!isAllowedType(inspected.mimeType, config.UPLOAD_ALLOWED_TYPES)) {
      inspected.body.destroy()
      await discard(up)
      throw unsupportedType(inspected.mimeType)
    }
    await pipeline(inspected.body, new Writable({ write (_c, _e, cb) { cb() } }))
    const { size, sha256 } = inspected.result()
    if (size !== up.size || (up.sha256 !== null && sha256 !== up.sha256)) {
      await discard(up)
      throw new AppError(400, 'checksum_mismatch', 'The uploaded bytes do not match the declared sha256; the upload was discarded')
    }
    const doc = await createDocumentRecord(fastify, request, { id: up.id, filename: up.filename, mimeType: inspected.mimeType, size, sha256 }, request.body, { claimUploadId: up.id, via: 'presigned' })
    return await reply.code(201).header('etag', `"${doc.version}"`).header('location', `/documents/${doc.id}`).send(toDocument(doc))
  })

  async function discard (up: UploadRow): Promise<void> {
    await storage.delete(up.storageKey)
    await deleteUpload(db, up.id)
  }
}

export default uploadRoutes
