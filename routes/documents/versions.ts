import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { authErrors, errors, IdParam, Page, withHeaders } from '../../src/schemas/common.js'
import { CreateUpload, UploadTicket } from '../../src/schemas/documents.js'
import { Version, VersionListQuery, VersionParams } from '../../src/schemas/versions.js'
import { expectedVersions } from '../../src/domain/documents.js'
import { toVersion, type VersionResult } from '../../src/domain/version-service.js'
import { contentSchema, sendStored } from '../../src/http/object-response.js'
import { assertContentAvailable, assertVersionAvailable } from '../../src/domain/document-scan.js'
import { AppError } from '../../src/lib/errors.js'
import { declaredLength } from '../../src/lib/http.js'
import { auditContext } from '../../plugins/app/audit.js'

const IfMatch = Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 100 })) })

const MultipartVersionBody = Type.Object({
  file: Type.String({ format: 'binary', description: 'the new content (exactly one file part, no other field)' }),
}, { additionalProperties: false })

/** 201 with the new version, 200 with the current one when nothing changed; ETag = the document's metadata version. */
async function sendResult (reply: FastifyReply, id: string, r: VersionResult): Promise<FastifyReply> {
  return await reply.code(r.created ? 201 : 200).header('etag', `"${r.documentVersion}"`)
    .header('location', `/documents/${id}/versions/${r.version.number}`).send(r.version)
}

const changed = { 200: withHeaders(Version, 'ETag', 'Location'), 201: withHeaders(Version, 'ETag', 'Location') }

/**
 * Content versions of a document (docs/documents.md "Versions"): the document keeps its id while
 * its content changes. The steps are the version and upload services' (src/domain/version-service.ts,
 * src/domain/upload-service.ts); bytes are served as for the document's own content.
 */
const versionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { storage, config, versionService: versions, uploadService: uploads } = fastify

  fastify.post('/:id/versions', {
    config: {
      permission: 'documents:update',
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: MultipartVersionBody }, url }),
    },
    schema: {
      tags: ['documents'],
      summary: 'Upload a new version of the content (multipart/form-data; If-Match: "<version>" honoured)',
      description: 'One `file` part, streamed and checked like POST /documents (sha256, sniffed type, UPLOAD_MAX_BYTES, UPLOAD_ALLOWED_TYPES). ' +
        'Needs write access to the document (owner, write share, documents:manage); 409 when it is in the trash. ' +
        '201 with the new current version; 200 with the current version when the bytes are the same (nothing stored). ' +
        'The document\'s metadata `version` (its ETag) goes up by one with every new version. ' +
        'The bytes count against the document owner\'s storage quota (reserved from Content-Length before any byte is stored): 413 `quota_exceeded` when they do not fit; ' +
        '413 `shared_upload_limit` when a caller who is not the owner would hold more than QUOTA_SHARED_RESERVE_MAX_BYTES of it in unfinished uploads. ' +
        'With malware scanning (CLAMD_URL) the document is `scanning` until the new version was found clean.',
      consumes: ['multipart/form-data'],
      params: IdParam,
      headers: IfMatch,
      response: { ...changed, ...authErrors, ...errors(404, 409, 412, 413, 415) },
    },
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new AppError(415, 'unsupported_media_type', 'Send the new version as multipart/form-data')
    const r = await uploads.addVersionFromParts(request.user, auditContext(request), request.params.id, request.parts(), expectedVersions(request.headers['if-match']), declaredLength(request.headers['content-length']))
    return await sendResult(reply, request.params.id, r)
  })

  fastify.post('/:id/versions/uploads', {
    config: { permission: 'documents:update' },
    schema: {
      tags: ['documents'],
      summary: 'Start a pre-signed upload of a new version; finish it with POST /uploads/:uploadId/complete',
      description: 'Same body and answer as POST /uploads. Access is checked now and again at completion. ' +
        'The size is reserved against the owner\'s quota; a caller who is not the owner may hold at most QUOTA_SHARED_RESERVE_MAX_BYTES of it in unfinished uploads (413 `shared_upload_limit`).',
      params: IdParam,
      body: CreateUpload,
      response: { 201: UploadTicket, ...authErrors, ...errors(404, 409, 413, 415) },
    },
  }, async (request, reply) => {
    return await reply.code(201).send(await uploads.start(request.user, request.body, request.params.id))
  })

  fastify.get('/:id/versions', {
    config: { permission: 'documents:read' },
    schema: {
      tags: ['documents'],
      summary: 'The content versions of a document, newest first (cursor-paginated)',
      params: IdParam,
      querystring: VersionListQuery,
      response: { 200: Page(Version), ...authErrors, ...errors(404) },
    },
  }, async (request) => await versions.list(request.user, request.params.id, request.query))

  fastify.get('/:id/versions/:n', {
    config: { permission: 'documents:read' },
    schema: {
      tags: ['documents'],
      summary: 'One content version of a document',
      params: VersionParams,
      response: { 200: Version, ...authErrors, ...errors(404) },
    },
  }, async (request) => {
    const { doc, version } = await versions.get(request.user, request.params.id, request.params.n)
    return toVersion(version, version.number === doc.currentVersion)
  })

  fastify.get('/:id/versions/:n/content', {
    // writes the download's audit row: published for the lists (plugins/core/db.ts)
    config: { permission: 'documents:read', writes: true },
    schema: {
      tags: ['documents'],
      summary: 'Download one version\'s bytes (as GET /documents/:id/content: Range, If-None-Match, redirect=true)',
      params: VersionParams,
      querystring: contentSchema.querystring,
      headers: contentSchema.headers,
      response: { ...contentSchema.responses, ...authErrors },
    },
  }, async (request, reply) => {
    const { doc, version } = await versions.get(request.user, request.params.id, request.params.n)
    // The current version's bytes follow the document's scan status, every version its own verdict too.
    if (version.number === doc.currentVersion) assertContentAvailable(doc)
    assertVersionAvailable(version)
    return await sendStored(request, reply, storage, config.DOWNLOAD_URL_TTL, version,
      async (kind, range) => await fastify.documentService.downloaded(auditContext(request), doc.id, kind, range, version.number), 'Version content')
  })

  fastify.post('/:id/versions/:n/restore', {
    config: { permission: 'documents:update' },
    schema: {
      tags: ['documents'],
      summary: 'Make version n the content again, as a new current version (a copy inside the storage; If-Match honoured)',
      description: '201 with the new version; 200 with the current version when version n already is the current content (n is current, or has the same bytes). ' +
        'The copy counts against the owner\'s storage quota (413 `quota_exceeded`; `shared_upload_limit` for a non-owner over QUOTA_SHARED_RESERVE_MAX_BYTES); a version being scanned (409 `document_scanning`) or found infected (403 `document_infected`) is not restored.',
      params: VersionParams,
      headers: IfMatch,
      response: { ...changed, ...authErrors, ...errors(404, 409, 412, 413) },
    },
  }, async (request, reply) => {
    const r = await versions.restore(request.user, auditContext(request), request.params.id, request.params.n, expectedVersions(request.headers['if-match']))
    return await sendResult(reply, request.params.id, r)
  })
}

export default versionRoutes
