/**
 * The ingestion worker for the end-to-end dispatch benchmark: the real job code, ingestion queue only.
 * With BENCH_WORKER_FLOOR set, a floor instead: a BullMQ worker with the real worker's options on
 * the bench's own `bench-floor` queue, whose processor does nothing (`noop`) or only POSTs a
 * dispatch-sized payload to INGESTION_URL and reads the answer (`post`). No MySQL, no events:
 * what any BullMQ dispatcher pays per job before Quire's own bookkeeping.
 */
import http from 'node:http'
import { Worker } from 'bullmq'
import { loadConfig } from '../src/config.js'
import { buildWorkerApp } from '../src/build.js'
import { createRedis } from '../src/redis.js'
import { startWorkers } from '../src/worker-runner.js'

const config = loadConfig(process.env)
const floor = process.env.BENCH_WORKER_FLOOR

async function startFloor (kind: string): Promise<{ close: () => Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true })
  const target = new URL(config.INGESTION_URL)
  const post = async (body: string): Promise<number> => await new Promise((resolve, reject) => {
    const req = http.request(target, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        try {
          JSON.parse(Buffer.concat(chunks).toString('utf8'))
          resolve(res.statusCode ?? 0)
        } catch (err) {
          reject(err)
        }
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
  const connection = createRedis(config.REDIS_URL, { maxRetriesPerRequest: null, enableOfflineQueue: true })
  const worker = new Worker('bench-floor', async (job) => {
    if (kind !== 'post') return { ok: true }
    // about the size of a real dispatch payload (ids, a signed download URL, the document's fields)
    const status = await post(JSON.stringify({ ingestionId: job.data.ingestionId, pipeline: 'default', options: {}, document: { id: job.id, downloadUrl: 'x'.repeat(400) } }))
    if (status !== 200) throw new Error(`backend answered ${status}`)
    return { status: 'succeeded' }
  }, { connection, prefix: `${config.REDIS_PREFIX}:bull`, concurrency: config.INGESTION_CONCURRENCY, lockDuration: config.WORKER_LOCK_MS, stalledInterval: config.WORKER_LOCK_MS })
  await worker.waitUntilReady()
  return { close: async () => { await worker.close(); connection.disconnect(); agent.destroy() } }
}

let close: () => Promise<void>
if (floor !== undefined && floor !== '' && floor !== 'noop' && floor !== 'post') throw new Error(`BENCH_WORKER_FLOOR must be noop or post, not ${floor}`)
if (floor !== undefined && floor !== '') {
  close = (await startFloor(floor)).close
} else {
  const app = await buildWorkerApp(config)
  await app.ready()
  const running = await startWorkers(app, (process.env.BENCH_WORKER_QUEUES ?? 'ingestion').split(',') as Array<'ingestion' | 'webhooks'>)
  close = async () => { await running.close(); await app.close() }
}
process.stdout.write(`BENCH_READY ${JSON.stringify({ pid: process.pid })}\n`)

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  close().catch(() => undefined).finally(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
