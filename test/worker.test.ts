import { test } from 'tap'
import { QueueEvents } from 'bullmq'
import { buildWorkerApp } from '../src/build.js'
import { startWorkers } from '../src/worker-runner.js'
import { testConfig, testPrefix } from './helper.js'
import { startWorker } from './helpers/processes.js'
import { eventually, freePort } from './ingestion/helpers.js'

test('worker instance has the plugins but no routes, and runs a registered job', async (t) => {
  const config = testConfig()
  const app = await buildWorkerApp(config)
  // Teardown first: a failed step below must not leave the app, workers or events open.
  const open: { running?: Awaited<ReturnType<typeof startWorkers>>, events?: QueueEvents } = {}
  t.teardown(async () => { await open.events?.close(); await open.running?.close(); await app.close() })
  await app.ready()
  t.ok(app.db && app.redis && app.storage && app.queues, 'decorators present')
  const res = await app.inject({ method: 'GET', url: '/health' })
  t.equal(res.statusCode, 404, 'no routes in the worker')
  open.running = await startWorkers(app, ['cleanup'])
  const events = open.events = new QueueEvents('cleanup', { connection: { url: config.REDIS_URL }, prefix: `${config.REDIS_PREFIX}:bull` })
  await events.waitUntilReady()
  const job = await app.queues.cleanup.add('noop', { echo: 'ping' })
  const result = await job.waitUntilFinished(events, 10000) as { echo: string }
  t.equal(result.echo, 'ping')
})

test('the worker process boots and stops cleanly on SIGTERM', async (t) => {
  const worker = await startWorker(t, testConfig({ REDIS_PREFIX: testPrefix('worker-proc') }))
  t.pass('worker started')
  const { code } = await worker.stop('SIGTERM')
  t.equal(code, 0, 'exit code 0')
  t.match(worker.output(), /worker stopped/)
})

test('a worker with WORKER_METRICS_PORT serves its job outcomes, event loop and pool metrics', async (t) => {
  const config = testConfig()
  const port = await freePort()
  const worker = await startWorker(t, config, { HOST: '127.0.0.1', WORKER_METRICS_PORT: String(port) })

  const app = await buildWorkerApp(config)
  t.teardown(async () => await app.close())
  await app.ready()
  await app.queues.cleanup.add('noop', { echo: 'metrics' })
  const completed = 'quire_job_outcomes_total{queue="cleanup",job="noop",outcome="completed"} 1'
  const body = await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`)
    const text = await res.text()
    return res.status === 200 && text.includes(completed) ? text : null
  }, 60_000)
  t.match(body, completed, 'the job the worker ran is counted')
  t.match(body, /quire_nodejs_eventloop_lag_p99_seconds \d/)
  t.match(body, /quire_db_pool_connections\{state="total"\} \d+/)
  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404)
  const { code } = await worker.stop('SIGTERM')
  t.equal(code, 0, 'stops cleanly with the metrics server open')
})
