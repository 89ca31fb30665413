import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox'
import type { MultipartFile } from '@fastify/multipart'
import { Description, Document, DocumentPatch, ListQuery, Title, Visibility } from '../../src/schemas/documents.js'
import { authErrors, errors, IdParam, NoContent, Page, RequestHeader, withHeaders } from '../../src/schemas/common.js'
import { requireDocument } from '../../src/domain/document-access.js'
import {
  deleteDocumentRow, expectedVersions, getDocumentRow, listDocuments, normalizeTags, originalKey, readDocumentJson, setTrashed, toDocument, updateDocument,
} from '../../src/domain/documents.js'
import { checkFields, cleanFilename, createDocumentRecord } from '../../src/domain/document-create.js'
import { inspect, isAllowedType, storeInspected, unsupportedType } from '../../src/domain/uploads.js'
import { AppError, badRequest, conflict, forbidden } from '../../src/lib/errors.js'
import { newId } from '../../src/lib/ids.js'
import { enqueueObjectDeletion } from '../../src/jobs/object-deletion.js'
import { etagMatches } from '../../src/lib/http.js'

const FIELD_NAMES = new Set(['title', 'description', 'tags', 'visibility'])

const MultipartDocumentBody = Type.Object({
  file: Type.String({ format: 'binary', description: 'the document (exactly one file part)' }),
  title: Type.Optional(Title),
  description: Type.Optional(Description),
  tags: Type.Optional(Type.Array(Type.String(), { description: 'repeat the field for several tags' })),
  visibility: Type.Optional(Visibility),
}, { additionalProperties: false })

const documentRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, storage, config } = fastify

  fastify.get('/', {
    config: { permission: 'documents:read' },
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
    const page = await listDocuments(db, request.user, request.query)
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
        'The file streams to storage; its type is sniffed from its bytes. 413 when larger than UPLOAD_MAX_BYTES, 415 when its type is not allowed.',
      consumes: ['multipart/form-data'],
      response: { 201: withHeaders(Document, 'ETag', 'Location'), ...authErrors, ...errors(413, 415) },
    },
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new AppError(415, 'unsupported_media_type', 'Send the document as multipart/form-data')
    const id = newId()
    const key = originalKey(id)
    const values: Record<string, string[]> = {}
    let stored: { filename: string, mimeType: string, size: number, sha256: string } | null = null
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw badRequest(`Unexpected file part "${part.fieldname}": send the file as "file"`, 'validation_failed')
          stored = await storeFile(part)
          continue
        }
        if (!FIELD_NAMES.has(part.fieldname)) throw new AppError(400, 'validation_failed', `Unknown field "${part.fieldname}"`, [{ path: `/${part.fieldname}`, message: 'unknown property' }])
        if (part.valueTruncated) throw new AppError(400, 'validation_failed', `Field "${part.fieldname}" is too long`, [{ path: `/${part.fieldname}`, message: 'too long' }])
        ;(values[part.fieldname] ??= []).push(String(part.value))
      }
      if (stored === null) throw new AppError(400, 'validation_failed', 'A "file" part is required', [{ path: '/file', message: 'required' }])
      const single = (name: string): string | undefined => {
        const v = values[name]
        if (v !== undefined && v.length > 1) throw new AppError(400, 'validation_failed', `Field "${name}" may be sent once`, [{ path: `/${name}`, message: 'repeated' }])
        return v?.[0]
      }
      const fields = checkFields(Object.fromEntries(Object.entries({
        title: single('title'), description: single('description'), visibility: single('visibility'), tags: values.tags,
      }).filter(([, v]) => v !== undefined)))
      const doc = await createDocumentRecord(fastify, request, { id, ...stored }, fields, { via: 'multipart' })
      return await reply.code(201).header('etag', `"${doc.version}"`).header('location', `/documents/${doc.id}`).send(toDocument(doc))
    } catch (err) {
      // The object is deleted by createDocumentRecord on insert failures; here for everything before.
      if (stored !== null) await storage.delete(key).catch((e: unknown) => request.log.error({ err: e, key }, 'could not delete an orphaned object'))
      throw err
    }

    async function storeFile (part: MultipartFile) {
      if (stored !== null) throw badRequest('Send exactly one file', 'validation_failed')
      const inspected = await inspect(part.file, { maxBytes: config.UPLOAD_MAX_BYTES, declaredType: part.mimetype, truncated: () => part.file.truncated })
      if (!isAllowedType(inspected.mimeType, config.UPLOAD_ALLOWED_TYPES)) {
        inspected.body.destroy()
        throw unsupportedType(inspected.mimeType)
      }
      const r = await storeInspected(storage, key, inspected)
      return { filename: cleanFilename(part.filename), mimeType: inspected.mimeType, ...r }
    }
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
    const expected = expectedVersions(request.headers['if-match'])
    const { doc, canShare } = await requireDocument(db, request.user, request.params.id, 'write', 'any')
    if (doc.deletedAt !== null) throw conflict('The document is in the trash; restore it first', 'document_trashed')
    // Visibility decides who may read the document: changing it takes share rights, not a write
    // share (the same value again is a no-op, fine for any writer).
    if (request.body.visibility !== undefined && request.body.visibility !== doc.visibility && !canShare) {
      throw forbidden('Only the owner (with documents:share) or a documents manager may change the visibility')
    }
    if (Array.isArray(expected) && !expected.includes(doc.version)) throw versionMismatch(doc.version)
    const { tags, ...rest } = request.body
    const updated = await updateDocument(db, doc.id, doc.version, { ...rest, ...(tags !== undefined ? { tags: normalizeTags(tags) } : {}) })
    if (updated === null) {
      // Changed between our read and our write: with If-Match the client must re-read; without, it raced.
      throw expected !== undefined ? versionMismatch() : conflict('The document changed while updating it, retry', 'version_mismatch')
    }
    await fastify.audit(request, { action: 'document.update', subject: `document:${doc.id}`, payload: { fields: Object.keys(request.body), version: updated.version } })
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
    const user = request.user
    if (!request.query.permanent) {
      // A trashed document is 409 for those who could restore it (404 for everyone else).
      const { doc } = await requireDocument(db, user, request.params.id, 'write', 'any')
      if (doc.deletedAt !== null || !await setTrashed(db, doc.id, true)) throw conflict('The document is already in the trash', 'already_trashed')
      await fastify.audit(request, { action: 'document.delete', subject: `document:${doc.id}`, payload: { permanent: false } })
      return await reply.code(204).send(null)
    }
    const { doc, isOwner } = await requireDocument(db, user, request.params.id, 'write', 'any')
    if (!user.can('documents:manage')) {
      if (!isOwner) throw forbidden('Only the owner or a documents manager may delete a document permanently')
      if (doc.deletedAt === null) throw conflict('Move the document to the trash before deleting it permanently', 'not_trashed')
    }
    const keys = await deleteDocumentRow(db, doc.id)
    if (keys !== null) await enqueueObjectDeletion(fastify, keys, request.log)
    await fastify.audit(request, { action: 'document.delete', subject: `document:${doc.id}`, payload: { permanent: true, filename: doc.filename, ownerId: doc.ownerId } })
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
    const { doc } = await requireDocument(db, request.user, request.params.id, 'write', 'any')
    if (doc.deletedAt === null || !await setTrashed(db, doc.id, false)) throw conflict('The document is not in the trash', 'not_trashed')
    await fastify.audit(request, { action: 'document.restore', subject: `document:${doc.id}` })
    const restored = await getDocumentRow(db, doc.id) ?? { ...doc, deletedAt: null, version: doc.version + 1 }
    return await reply.header('etag', `"${restored.version}"`).send(toDocument(restored))
  })
}

function versionMismatch (current?: number): AppError {
  return new AppError(412, 'version_mismatch', current !== undefined
    ? `The document is at version ${current}; re-read it and retry`
    : 'The document changed; re-read it and retry')
}

export default documentRoutes
