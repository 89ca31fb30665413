import { startFauxqs } from 'fauxqs'
import { randomBytes } from 'node:crypto'
import type { Config } from '../../src/config.js'

interface Teardownable { teardown: (fn: () => unknown) => void }

/**
 * An in-process S3-compatible server (fauxqs) on a loopback port with a fresh bucket, stopped when
 * the test ends. It does not verify signatures or expiry of pre-signed URLs.
 */
export async function startS3 (t: Teardownable): Promise<Partial<Config>> {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
  t.teardown(async () => await server.stop())
  const bucket = `quire-${randomBytes(4).toString('hex')}`
  server.createBucket(bucket)
  return {
    STORAGE_DRIVER: 's3',
    S3_ENDPOINT: `http://127.0.0.1:${server.port}`,
    S3_BUCKET: bucket,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'test',
    S3_SECRET_ACCESS_KEY: 'test',
    S3_FORCE_PATH_STYLE: true,
  }
}
