/** The upload scenario against S3 storage: the fauxqs emulator in a child process, a server of its own. */
import { join } from 'node:path'
import { sleep, startChild, type Child } from '../lib.js'
import { startServer, targetLine, tokenFor, type Scenario } from '../runner/harness.js'
import { CLIENT_CPU, here, UPLOAD_MB } from '../runner/options.js'
import { uploadScenario } from './upload.js'

export const uploadS3: Scenario = {
  name: 'upload-s3',
  server: 'own',
  run: async ({ seeded, backend }) => {
    let s3: Child | null = null
    try {
      s3 = await startChild('s3', join(here, 's3.ts'), { cpus: CLIENT_CPU, nodeArgs: ['--expose-gc'], env: { BENCH_S3_BUCKET: 'quire-bench' } })
    } catch (err) {
      targetLine({ scenario: `${UPLOAD_MB} MiB upload (S3): RSS and throughput`, subject: 'POST /documents', baseline: '-', target: '-', note: `skipped: S3 emulator (fauxqs) unavailable: ${(err as Error).message.slice(0, 200)}`, min: 0 }, NaN)
      return
    }
    const server = await startServer({
      STORAGE_DRIVER: 's3',
      S3_ENDPOINT: `http://127.0.0.1:${String(s3.ready.port)}`,
      S3_BUCKET: 'quire-bench',
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: 'bench',
      S3_SECRET_ACCESS_KEY: 'bench',
      S3_FORCE_PATH_STYLE: 'true',
      INGESTION_URL: backend.url,
    })
    const token = await tokenFor(server, seeded.userIds[0]!)
    const proc = s3.proc
    await uploadScenario({ server, token, label: 'S3 (fauxqs)', clearStorage: async () => { proc.kill('SIGUSR2'); await sleep(50) }, s3: { endpoint: `http://127.0.0.1:${String(s3.ready.port)}`, pid: Number(s3.ready.pid) } })
    await server.stop()
    await s3.stop()
  },
}
