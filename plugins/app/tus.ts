import fp from 'fastify-plugin'
import { createTusStore, type TusStore } from '../../src/storage/tus-store.js'
import { RedisLocker } from '../../src/lib/redis-locker.js'
import { tusUploadService } from '../../src/domain/tus-uploads.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The tus data store over Quire's storage, and how to remove an upload's leftovers (the sweep uses it too). */
    tusStore: TusStore
    /** Upload locks shared by every API process (Redis). */
    tusLocker: RedisLocker
    tusUploads: ReturnType<typeof tusUploadService>
  }
}

/**
 * Resumable uploads' shared parts (routes/uploads/tus.ts serves the protocol): the store, the
 * Redis locker and the domain service. In the worker too: the uploads sweep removes expired
 * uploads' leftovers with `tusStore.purge`.
 */
export default fp(async (fastify) => {
  const { config } = fastify
  const store = await createTusStore(config, fastify.storage, fastify.redis, config.REDIS_PREFIX)
  fastify.decorate('tusStore', store)
  // Both keys of an upload in one hash slot (the release script touches both on a Redis Cluster).
  fastify.decorate('tusLocker', new RedisLocker(fastify.redis, {
    keys: (id) => ({ lock: fastify.redisKey('tus', `{${id}}`, 'lock'), release: fastify.redisKey('tus', `{${id}}`, 'release') }),
  }))
  fastify.decorate('tusUploads', tusUploadService({
    db: fastify.db,
    storage: fastify.storage,
    limits: { maxBytes: config.UPLOAD_MAX_BYTES, allowedTypes: config.UPLOAD_ALLOWED_TYPES, urlTtl: config.UPLOAD_URL_TTL },
    versions: fastify.versionService,
    uploads: fastify.uploadService,
    quota: fastify.quota,
    purge: store.purge,
    log: fastify.log,
  }))
}, { name: 'tus', dependencies: ['config', 'db', 'redis', 'storage', 'services'] })
