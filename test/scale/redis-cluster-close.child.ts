// The child process of redis-cluster-close.test.ts: makes Quire's Redis Cluster clients, closes them
// and must then end on its own (nothing else closes it). Environment: REDIS_CLUSTER_NODES,
// DATABASE_URL. Modes (argv[2]):
//   connecting  the clients as Quire makes them (the app's client, the queues' shared client, a
//               Queue, a Worker with its own connection, a QueueEvents, a pub/sub subscriber),
//               closed right after they were created, while they still connect
//   apps        an API, a worker instance and its workers (src/worker-runner.ts) and a QueueEvents;
//               prints READY, waits for a line on stdin (the parent may stop the cluster's nodes
//               meanwhile), then closes them as the server and the worker do
// Prints `CLOSED <ms>` once every close resolved.
import { createInterface } from 'node:readline'
import { Queue, QueueEvents, Worker } from 'bullmq'
import { buildApp, buildWorkerApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { QUEUE_NAMES } from '../../src/jobs/types.js'
import { bullPrefix, createRedis, lazySubscriber } from '../../src/redis.js'
import { testConfig, testPrefix, TEST_PLUGIN_TIMEOUT } from '../helper.js'

const mode = process.argv[2]
const config = testConfig({
  DATABASE_URL: process.env.DATABASE_URL ?? '',
  REDIS_URL: `redis://${(process.env.REDIS_CLUSTER_NODES ?? '').split(',')[0] ?? ''}`,
  REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_NODES ?? '',
  REDIS_PREFIX: testPrefix('cluster-close'),
})
const prefix = bullPrefix(config)
const ignore = (): void => {}
/** Says on stderr when each close resolved: which one hangs shows in the parent's output. */
const step = async (what: string, p: Promise<unknown>): Promise<void> => {
  const started = Date.now()
  await p
  console.error(`${what} closed in ${Date.now() - started} ms`)
}

/** A QueueEvents on its own connection, made as the workers' connections are. */
function queueEvents (): { ready: () => Promise<void>, close: () => Promise<void> } {
  const connection = createRedis(config, { maxRetriesPerRequest: null, enableOfflineQueue: true })
  connection.on('error', ignore)
  const events = new QueueEvents('ingestion', { connection, prefix })
  events.on('error', ignore)
  return {
    ready: async () => { await events.waitUntilReady() },
    close: async () => {
      // diagnostic: the state of its clients when its close takes more than 10 s
      const timer = setTimeout(() => {
        const b = (events as unknown as { backend: { connection: { _client: unknown, status: string } } }).backend
        const c = b.connection._client as { status: string, manuallyClosing: boolean, nodes: () => Array<{ status: string }> }
        console.error(`queue events still closing: RedisConnection ${b.connection.status}, its client ${c.status} manuallyClosing=${String(c.manuallyClosing)} nodes=${c.nodes().map(n => n.status).join(',')}; the shared one ${connection.status}`)
      }, 10_000)
      timer.unref()
      await events.close()
      clearTimeout(timer)
      connection.disconnect()
    },
  }
}

let close: () => Promise<void>
if (mode === 'connecting') {
  // as plugins/core/redis.ts, plugins/app/queue.ts, src/worker-runner.ts and src/redis.ts make them
  const redis = createRedis(config, { enableAutoPipelining: true, commandTimeout: 2000 })
  redis.on('error', ignore)
  const shared = createRedis(config, { maxRetriesPerRequest: 1 })
  shared.on('error', ignore)
  const queue = new Queue('ingestion', { connection: shared, prefix })
  queue.on('error', ignore)
  const workerConnection = createRedis(config, { maxRetriesPerRequest: null, enableOfflineQueue: true })
  workerConnection.on('error', ignore)
  const worker = new Worker('ingestion', async () => {}, { connection: workerConnection, prefix, autorun: true })
  worker.on('error', ignore)
  const events = queueEvents()
  const subscriber = lazySubscriber(config, 'quire-close-test', ignore, ignore)
  subscriber.ready().catch(ignore)
  close = async () => {
    await Promise.all([step('queue', queue.close()), step('worker', worker.close()), step('queue events', events.close())])
    subscriber.close()
    for (const c of [redis, shared, workerConnection]) c.disconnect()
  }
} else if (mode === 'apps') {
  const api = await buildApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  await api.ready()
  const workerApp = await buildWorkerApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  await workerApp.ready()
  const running = await startWorkers(workerApp, QUEUE_NAMES)
  const events = queueEvents()
  // Not closed before its connection is ready: a QueueEvents (or Worker) whose BullMQ-made connection
  // never got ready while the nodes are down cannot close yet (RedisConnection.disconnect awaits its
  // init, which waits for a `ready` that never comes; see scripts/probe-cluster.ts).
  await events.ready()
  // a job goes through, so every connection has been used
  await api.queues.cleanup.add('close-test', {}, { removeOnComplete: true, removeOnFail: true }).catch(ignore)
  console.log('READY')
  const lines = createInterface({ input: process.stdin })
  await new Promise<void>(resolve => lines.once('line', () => resolve()))
  lines.close()
  close = async () => {
    // as src/worker.ts and src/server.ts shut down
    await step('workers', running.close())
    await Promise.all([step('worker instance', workerApp.close()), step('api', api.close()), step('queue events', events.close())])
  }
} else {
  throw new Error(`unknown mode ${String(mode)}`)
}
const started = Date.now()
await close()
console.log(`CLOSED ${Date.now() - started}`)
