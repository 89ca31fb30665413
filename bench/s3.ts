/**
 * An S3-compatible emulator (fauxqs, in-memory) in its own process, so its memory is not the
 * server's. SIGUSR2 empties the bucket between upload batches.
 */
import { startFauxqs } from 'fauxqs'

const bucket = process.env.BENCH_S3_BUCKET ?? 'quire-bench'
const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
server.createBucket(bucket)
process.on('SIGUSR2', () => {
  server.emptyBucket(bucket)
  ;(globalThis as { gc?: () => void }).gc?.()
})
process.stdout.write(`BENCH_READY ${JSON.stringify({ port: server.port, bucket, pid: process.pid })}\n`)
const shutdown = (): void => { server.stop().catch(() => undefined).finally(() => process.exit(0)) }
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
