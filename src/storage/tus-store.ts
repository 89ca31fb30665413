import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { FileStore } from '@tus/file-store'
import { S3Store, type MetadataValue } from '@tus/s3-store'
import { IoRedisKvStore, type DataStore, type KvStore } from '@tus/utils'
import type { Config } from '../config.js'
import type { RedisClient } from '../redis.js'
import { s3ClientConfig } from './s3.js'
import type { LocalStorage } from './local.js'
import type { Storage } from './types.js'

/** S3's limit on the parts of one multipart upload. */
export const S3_MAX_PARTS = 10_000
/**
 * The tus S3 store plans an upload's parts from its declared length with this many; the rest of
 * S3's 10,000 are headroom for the short parts an interrupted PATCH leaves (one per resume).
 */
export const TUS_PLANNED_PARTS = 9_000
/** The S3 store's preferred part (it grows with the declared length past 9,000 of these). */
export const TUS_PREFERRED_PART = 8 * 1024 * 1024
/** S3's smallest part (but the last). */
export const S3_MIN_PART = 5 * 1024 * 1024

/**
 * The part size the S3 store uses for an upload of `size` bytes (as @tus/s3-store computes it):
 * 9,000 of them always hold the whole upload, so UPLOAD_MAX_BYTES is never capped by the part
 * limit (test/uploads/tus-parts.test.ts).
 */
export function tusPartSize (size: number): number {
  const planned = size <= TUS_PREFERRED_PART ? size : size <= TUS_PREFERRED_PART * TUS_PLANNED_PARTS ? TUS_PREFERRED_PART : Math.ceil(size / TUS_PLANNED_PARTS)
  return Math.max(planned, S3_MIN_PART)
}

export interface TusStore {
  datastore: DataStore
  /**
   * Removes everything a tus upload at staging key `key` may have left: the bytes, the store's
   * metadata (`.json` beside the file; `.info` and the incomplete `.part` on S3), S3's multipart
   * upload (AbortMultipartUpload) and the cached metadata. Missing pieces are not an error.
   */
  purge: (key: string) => Promise<void>
}

type TusSettings = Pick<Config, 'STORAGE_DRIVER' | 'STORAGE_DIR' | 'UPLOAD_URL_TTL' | 'S3_BUCKET' | 'S3_REGION' | 'S3_ENDPOINT' | 'S3_ACCESS_KEY_ID' | 'S3_SECRET_ACCESS_KEY' | 'S3_FORCE_PATH_STYLE'>

/**
 * The @tus/server data store over Quire's storage: upload ids are staging keys (`uploads/<id>`),
 * so the bytes land where a pre-signed upload's do (src/domain/upload-staging.ts) and the same
 * complete moves them to their final key. Local: @tus/file-store in STORAGE_DIR (its metadata in
 * a `.json` beside the file); S3: @tus/s3-store in S3_BUCKET (multipart; `.info` objects), its
 * metadata cache in Redis (`<REDIS_PREFIX>:tus:s3:`), not in one process' memory.
 */
/**
 * FileStore creates its directory in its constructor and throws from a callback when it cannot (an
 * uncaught exception: the process dies). Quire creates it itself, above, without that.
 */
class QuietFileStore extends FileStore {}

/** What OPTIONS advertises (Tus-Extension): not the deferred length and concatenation Quire refuses (the quota needs the length up front). */
function offered<S extends DataStore> (store: S): S {
  store.extensions = store.extensions.filter(e => e !== 'creation-defer-length' && e !== 'concatenation')
  return store
}
Object.defineProperty(QuietFileStore.prototype, 'checkOrCreateDirectory', { value: () => undefined })

export async function createTusStore (config: TusSettings, storage: Storage, redis: RedisClient, redisPrefix: string): Promise<TusStore> {
  const expirationPeriodInMilliseconds = config.UPLOAD_URL_TTL * 1000
  if (config.STORAGE_DRIVER === 's3') {
    // ioredis' Cluster answers the same get/set/del/scan: the kv store uses nothing else.
    const cache = new IoRedisKvStore<MetadataValue>(redis as unknown as Redis, `${redisPrefix}:tus:s3:`)
    const store = new S3Store({
      s3ClientConfig: { ...s3ClientConfig(config), bucket: config.S3_BUCKET },
      partSize: TUS_PREFERRED_PART,
      minPartSize: S3_MIN_PART,
      maxMultipartParts: TUS_PLANNED_PARTS,
      // parts are buffered in temp files, not memory; this bounds them (and S3 connections) per process
      maxConcurrentPartUploads: 8,
      // expiry is Quire's (the uploads sweep); S3 tagging is not implemented by every S3-compatible server
      useTags: false,
      expirationPeriodInMilliseconds,
      cache,
    })
    return { datastore: offered(store), purge: async (key) => await purgeWith(store, storage, key, ['.info', '.part'], cache) }
  }
  const root = (storage as LocalStorage).root ?? config.STORAGE_DIR
  // An unusable directory must not stop the process: /health/ready names storage as failing.
  await mkdir(join(root, 'uploads'), { recursive: true }).catch(() => undefined)
  const store = new QuietFileStore({ directory: root, expirationPeriodInMilliseconds })
  return { datastore: offered(store), purge: async (key) => await purgeWith(store, storage, key, ['.json']) }
}

/**
 * Nothing to do without any of the store's own objects (`own`: its metadata; on S3 also the
 * incomplete part, which tus' termination leaves): not a tus upload (a pre-signed one), or one
 * already purged. Else S3's multipart upload is aborted (its id is in the metadata; an upload
 * already completed answers "not found", which is fine), then the objects go, the metadata last,
 * so a purge interrupted by a failure is done again by the next sweep.
 */
async function purgeWith (store: DataStore, storage: Storage, key: string, own: string[], cache?: KvStore<MetadataValue>): Promise<void> {
  const found = await Promise.all(own.map(async s => await storage.head(`${key}${s}`) !== null))
  if (found.includes(true)) {
    await store.remove(key).catch((err: unknown) => {
      if ((err as { status_code?: number }).status_code !== 404) throw err
    })
    for (const s of ['', ...own]) await storage.delete(`${key}${s}`)
  }
  await cache?.delete(key)
}
