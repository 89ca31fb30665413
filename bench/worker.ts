/** The ingestion worker for the end-to-end dispatch benchmark: the real job code, ingestion queue only. */
import { loadConfig } from '../src/config.js'
import { buildWorkerApp } from '../src/build.js'
import { startWorkers } from '../src/worker-runner.js'

const app = await buildWorkerApp(loadConfig(process.env))
await app.ready()
const running = await startWorkers(app, ['ingestion'])
process.stdout.write(`BENCH_READY ${JSON.stringify({ pid: process.pid })}\n`)

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  running.close().then(async () => await app.close()).catch(() => undefined).finally(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
