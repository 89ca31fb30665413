import type { Config } from '../config.js'
import { LocalStorage } from './local.js'
import type { Storage } from './types.js'

export * from './types.js'

export async function createStorage (config: Config): Promise<Storage> {
  if (config.STORAGE_DRIVER === 's3') {
    const { S3Storage } = await import('./s3.js')
    return new S3Storage(config)
  }
  return new LocalStorage(config.STORAGE_DIR, { baseUrl: config.PUBLIC_URL, secret: config.STORAGE_URL_SECRET })
}
