import fp from 'fastify-plugin'
import { authService } from '../../src/domain/auth.js'
import { sessionDeps } from '../../src/domain/sessions.js'
import { userAdmin } from '../../src/domain/user-admin.js'
import { documentService } from '../../src/domain/document-service.js'
import { versionService } from '../../src/domain/version-service.js'
import { uploadService } from '../../src/domain/upload-service.js'
import { quotaService } from '../../src/domain/quota.js'
import { enqueueObjectDeletion } from '../../src/jobs/object-deletion.js'
import { queueAdmin } from '../../src/jobs/queue-admin.js'

/*
 * The domain services, built once from narrow dependencies (src/domain/*: factories over db,
 * redis, storage, enqueue, clock, log and the audit writer) and decorated for the routes, which
 * pass an audit context (plugins/app/audit.ts `auditContext`), never the request.
 */
declare module 'fastify' {
  interface FastifyInstance {
    authService: ReturnType<typeof authService>
    userAdmin: ReturnType<typeof userAdmin>
    documentService: ReturnType<typeof documentService>
    queueAdmin: ReturnType<typeof queueAdmin>
    versionService: ReturnType<typeof versionService>
    uploadService: ReturnType<typeof uploadService>
    /** storage quotas: reserve / settle / release (src/domain/quota.ts), for every upload path (tus too) */
    quota: ReturnType<typeof quotaService>
  }
}

export default fp(async (fastify) => {
  const base = sessionDeps(fastify)
  const clock = base.clock
  fastify.decorate('authService', authService({ ...base, config: fastify.config, log: fastify.log, audit: fastify.recordAudit }))
  fastify.decorate('userAdmin', userAdmin({ db: fastify.db, redis: fastify.redis, key: fastify.redisKey, sessionTtlSeconds: fastify.config.REFRESH_TOKEN_TTL, bcryptCost: fastify.config.BCRYPT_COST, audit: fastify.recordAudit }))
  fastify.decorate('documentService', documentService({
    db: fastify.db,
    storage: fastify.storage,
    enqueue: async (name, data) => await fastify.enqueue(name, data),
    scan: fastify.config.CLAMD_URL !== '',
    deleteObjects: async (keys) => await enqueueObjectDeletion(fastify, keys, fastify.log),
    clock,
    log: fastify.log,
    audit: fastify.recordAudit,
    index: {
      trashed: async (ctx, doc) => await fastify.ingestions.documentTrashed(ctx, doc),
      restored: async (ctx, id) => await fastify.ingestions.documentRestored(ctx, id),
      purged: async (ctx, doc) => await fastify.ingestions.documentPurged(ctx, doc),
    },
  }))
  fastify.decorate('queueAdmin', queueAdmin({ queues: fastify.queues, audit: fastify.recordAudit }))
  fastify.decorate('quota', quotaService({ db: fastify.db, defaultBytes: fastify.config.QUOTA_DEFAULT_BYTES, sharedMaxBytes: fastify.config.QUOTA_SHARED_RESERVE_MAX_BYTES }))
  fastify.decorate('versionService', versionService({
    db: fastify.db,
    storage: fastify.storage,
    enqueue: async (name, data) => await fastify.enqueue(name, data),
    scan: fastify.config.CLAMD_URL !== '',
    newObject: fastify.documentService.newObjectDeps,
    quota: fastify.quota,
    deleteObjects: async (keys) => await enqueueObjectDeletion(fastify, keys, fastify.log),
    keep: fastify.config.VERSIONS_KEEP,
    // A new current version: re-ingested when the document is in the index (src/domain/ingestions/follow.ts).
    onContentChanged: async (ctx, documentId) => { await fastify.ingestions.documentChanged(ctx, documentId) },
    log: fastify.log,
    audit: fastify.recordAudit,
  }))
  fastify.decorate('uploadService', uploadService({
    db: fastify.db,
    storage: fastify.storage,
    limits: { maxBytes: fastify.config.UPLOAD_MAX_BYTES, allowedTypes: fastify.config.UPLOAD_ALLOWED_TYPES, urlTtl: fastify.config.UPLOAD_URL_TTL },
    documents: fastify.documentService,
    versions: fastify.versionService,
    quota: fastify.quota,
    log: fastify.log,
  }))
}, { name: 'services', dependencies: ['config', 'db', 'redis', 'jwt', 'audit', 'storage', 'queue', 'ingestions'] })
