import { AsyncLocalStorage } from 'node:async_hooks'
import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import type { SwaggerTransform } from '@fastify/swagger'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Server } from '@tus/server'
import { ERRORS } from '@tus/utils'
import { Id, NoContent, authErrors, errors } from '../../src/schemas/common.js'
import { auditContext } from '../../plugins/app/audit.js'
import { stagingKey, stagingUploadId } from '../../src/domain/upload-staging.js'
import type { TusCreation } from '../../src/domain/tus-uploads.js'
import { toErrorBody } from '../../src/lib/error-reply.js'
import { isId } from '../../src/lib/ids.js'
import { AppError, unavailable } from '../../src/lib/errors.js'

/** The request a tus hook runs for (the hooks get srvx's copy of the request, not Fastify's). */
/** One tus request: `uploadId` is the id from the route's params, checked (lower case) and owned by the caller. */
interface TusCall { request: FastifyRequest, creation?: TusCreation, uploadId?: string }

const TUS_PATH = '/uploads/tus'
const UploadParams = Type.Object({ uploadId: Id() }, { additionalProperties: false })
const PROTOCOL = 'tus 1.0 (core, creation, creation-with-upload, termination, expiration): see docs/documents.md#resumable-uploads-tus.'

/**
 * Resumable uploads: the tus 1.0 protocol, served by @tus/server over Quire's storage
 * (src/storage/tus-store.ts), its locks in Redis, so any API process takes any request of an
 * upload. Authentication and permissions are every route's (plugins/app/auth.ts); the creation's
 * length and metadata are checked before tus sees it, and only an upload's owner reaches it
 * (src/domain/tus-uploads.ts). The last PATCH creates the document (or the version).
 */
const tusRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config, tusUploads } = fastify
  const calls = new AsyncLocalStorage<TusCall>()
  const call = (): TusCall => {
    const c = calls.getStore()
    if (c === undefined) throw new Error('a tus hook ran outside its request')
    return c
  }
  const origins = config.CORS_ORIGINS.split(',').map(s => s.trim()).filter(Boolean)

  const tus = new Server({
    path: TUS_PATH,
    datastore: fastify.tusStore.datastore,
    locker: fastify.tusLocker,
    maxSize: config.UPLOAD_MAX_BYTES,
    // Location from X-Forwarded-Host/-Proto only behind a trusted proxy (docker/nginx.conf).
    respectForwardedHeaders: config.TRUST_PROXY,
    // CORS as the rest of the API (CORS_ORIGINS), not tus' default `*`.
    allowedOrigins: (origin) => origins.includes('*') || origins.includes(origin),
    exposedHeaders: ['Quire-Document-Id', 'Quire-Version', 'X-Request-Id'],
    // The upload id is its staging key (`uploads/<id>`); its URL shows the id alone.
    namingFunction: () => {
      const c = call().creation
      if (c === undefined) throw new Error('no checked creation for this request')
      return c.key
    },
    generateUrl: (_req, { proto, host, path, id }) => `${proto}://${host}${path}/${stagingUploadId(id) ?? ''}`,
    // The upload tus works on is the one the route checked (requireOwn), never one read from the
    // raw URL again: tus' own parser takes the last `/` segment of the URL with its query string
    // (`/uploads/tus/<own>?x=/<another>`) and keeps the id's letter case.
    getFileIdFromRequest: () => {
      const { uploadId } = call()
      return uploadId !== undefined && isId(uploadId) ? stagingKey(uploadId) : undefined
    },
    onUploadCreate: async () => {
      const { request, creation } = call()
      if (creation !== undefined) await tusUploads.register(request.user, creation)
      return {}
    },
    onUploadFinish: async (_req, upload) => {
      const { request } = call()
      // The complete reads the whole object again (minutes for a large file on S3) while the socket
      // carries nothing: the idle timeout (HTTP_IDLE_TIMEOUT_MS) must not cut the answer off.
      const socket = request.raw.socket as Partial<Socket> | null
      const idle = (ms: number): void => { if (typeof socket?.setTimeout === 'function') socket.setTimeout(ms) }
      idle(0)
      const done = await tusUploads.finish(request.user, auditContext(request), stagingUploadId(upload.id) ?? '', upload.metadata)
        .finally(() => { idle(config.HTTP_IDLE_TIMEOUT_MS) })
      // tus writes its answer itself (no onSend hook): the new document's position is published here.
      await fastify.reads.afterWrite().catch((err: unknown) => { request.log.error({ err }, 'could not publish the primary\'s position for the read replica') })
      const headers: Record<string, string> = done.kind === 'document'
        ? { 'Quire-Document-Id': done.doc.id }
        : { 'Quire-Document-Id': done.documentId, 'Quire-Version': String(done.result.version.number) }
      return { headers }
    },
    // Quire's own errors (from the hooks) in the API's error shape; tus' protocol errors stay as tus words them.
    onResponseError: (_req, err) => {
      const { request } = call()
      // Another request holds the upload (tus words it as a 500): busy, retry.
      if (err === ERRORS.ERR_LOCK_TIMEOUT) return { status_code: 503, body: JSON.stringify(toErrorBody(unavailable('The upload is busy (another request holds it); retry'), request)) }
      if (!(err instanceof Error)) return undefined
      const body = toErrorBody(err, request)
      if (body.statusCode >= 500) request.log.error({ err, requestId: request.id }, 'tus request failed')
      return { status_code: body.statusCode, body: JSON.stringify(body) }
    },
  })

  // tus bodies stream into the store: no parser reads them here.
  fastify.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => { done(null) })

  async function serve (request: FastifyRequest, reply: FastifyReply, opts: { creation?: TusCreation, uploadId?: string } = {}): Promise<void> {
    // tus writes the raw response: the headers every answer carries (X-Request-Id, security
    // headers) are copied there first.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value)
    reply.hijack()
    await calls.run({ request, ...opts }, async () => { await tus.handle(request.raw, reply.raw) })
  }

  /**
   * tus termination, done here rather than by @tus/server (whose DELETE only removes the store's
   * part, and whose response would go before Quire's part is done): under the upload's lock (a
   * PATCH still running on any process is asked to stop), the row is cancelled and everything the
   * store holds removed (S3: AbortMultipartUpload, `.info`, `.part`).
   */
  async function terminate (request: FastifyRequest, uploadId: string): Promise<void> {
    if (request.headers['tus-resumable'] === undefined) throw new AppError(412, 'precondition_failed', 'Tus-Resumable: 1.0.0 is required')
    const lock = fastify.tusLocker.newLock(stagingKey(uploadId))
    try {
      await lock.lock(AbortSignal.timeout(fastify.tusLocker.acquireTimeoutMs + 5000), () => {})
    } catch {
      throw unavailable('The upload is busy (another request holds it); retry')
    }
    try {
      await tusUploads.terminated(request.user, uploadId)
    } finally {
      await lock.unlock()
    }
  }

  // The bytes are streamed by tus, not parsed by Fastify: documented only.
  const rawBody = (optional: boolean): SwaggerTransform<FastifySchema> => ({ schema, url }) => {
    const body = Type.String({ format: 'binary' })
    return { schema: { ...schema, consumes: ['application/offset+octet-stream'], body: optional ? Type.Optional(body) : body }, url }
  }
  const tusHeaders = (description: string) => ({ tags: ['documents'], description: `${description} ${PROTOCOL}` })

  fastify.post('/tus', {
    // creation-with-upload: the first bytes may come with the creation (streamed, not parsed here)
    config: { permission: 'documents:create', swaggerTransform: rawBody(true) },
    schema: {
      ...tusHeaders('Upload-Length (at most UPLOAD_MAX_BYTES) is required; Upload-Metadata may carry title, description, tags (JSON array or comma-separated), visibility, filename, filetype, sha256 (checked at the end), documentId (a new version: documents:update and write access; no other fields).'),
      summary: 'Start a resumable (tus) upload: 201 with its Location',
      response: { 201: NoContent, ...authErrors, ...errors(404, 412, 413, 415) },
    },
  }, async (request, reply) => {
    const h = request.headers
    const one = (v: string | string[] | undefined): string | undefined => Array.isArray(v) ? v.join(',') : v
    const creation = await tusUploads.prepare(request.user, {
      uploadLength: one(h['upload-length']), deferLength: one(h['upload-defer-length']), concat: one(h['upload-concat']), metadata: one(h['upload-metadata']),
    })
    await serve(request, reply, { creation })
  })

  for (const method of ['HEAD', 'PATCH', 'DELETE'] as const) {
    fastify.route({
      method,
      url: '/tus/:uploadId',
      config: { permission: 'documents:create', ...(method === 'PATCH' ? { swaggerTransform: rawBody(false) } : {}) },
      schema: {
        ...tusHeaders({
          HEAD: 'Upload-Offset: how much of the upload the server has (resume from there).',
          PATCH: 'Upload-Offset must equal the server\'s; the body (application/offset+octet-stream) is appended. The last PATCH creates the document (Quire-Document-Id header) or the version (Quire-Version).',
          DELETE: 'Terminates the upload: its bytes are deleted.',
        }[method]),
        summary: { HEAD: 'Where a resumable upload stands', PATCH: 'Send bytes of a resumable upload', DELETE: 'Terminate a resumable upload' }[method],
        params: UploadParams,
        response: { [method === 'HEAD' ? 200 : 204]: NoContent, ...authErrors, ...errors(404, 409, 410, 412, 413, 415) },
      },
      handler: async (request, reply) => {
        const { uploadId } = request.params as { uploadId: string }
        await tusUploads.requireOwn(request.user, uploadId)
        if (method === 'DELETE') {
          await terminate(request, uploadId)
          return await reply.code(204).header('tus-resumable', '1.0.0').send(null)
        }
        await serve(request, reply, { uploadId })
      },
    })
  }

  fastify.options('/tus', {
    config: { public: true },
    schema: { ...tusHeaders('The server\'s tus version, extensions and Tus-Max-Size.'), summary: 'Resumable upload capabilities (tus OPTIONS)', response: { 204: NoContent } },
  }, async (request, reply) => { await serve(request, reply) })
}

export default tusRoutes
