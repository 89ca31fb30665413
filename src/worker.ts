import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from './config.js'
import { buildWorkerApp } from './build.js'
import { startWorkers } from './worker-runner.js'
import { startupSummary, summaryText } from './lib/startup-summary.js'

const config = loadConfigOrExit()

const app = await buildWorkerApp(config)
await app.ready()
const running = await startWorkers(app)

// Job outcomes are counted by the process that ran the job: a worker serves its own /metrics.
let metrics: Server | null = null
if (config.WORKER_METRICS_PORT > 0) {
  const registry = app.metrics.registry
  metrics = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    registry.metrics().then(
      (body) => { res.writeHead(200, { 'content-type': registry.contentType }).end(body) },
      (err: unknown) => { app.log.error({ err }, 'metrics failed'); res.writeHead(500).end() }
    )
  })
  metrics.listen(config.WORKER_METRICS_PORT, config.HOST)
  await once(metrics, 'listening')
}
const summary = startupSummary(config)
app.log.info({ queues: running.workers.map(w => w.name), metricsPort: metrics !== null ? config.WORKER_METRICS_PORT : undefined, ...summary }, `worker started: ${summaryText(summary)}`)

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'worker closing after an uncaught error')
  else app.log.info({ signal }, 'worker shutting down')
  metrics?.close()
  await running.close()
  await app.close()
  app.log.info('worker stopped')
})
