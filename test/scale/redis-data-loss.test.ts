import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { eq, inArray } from 'drizzle-orm'
import { buildApp, buildWorkerApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { QUEUE_NAMES } from '../../src/jobs/types.js'
import { schedules } from '../../src/jobs/catalogue.js'
import { ingestions, ingestionEvents } from '../../drizzle/schema/index.js'
import { startRedisServer } from '../../scripts/redis-local.js'
import { createUser, privateDatabase, testConfig, TEST_PLUGIN_TIMEOUT } from '../helper.js'
import { createDocument, eventually, freePort, json, scriptedBackend } from '../ingestion/helpers.js'

// A Redis of this file's own, without persistence: killed and started again, it comes back empty
// (as after a restart of a non-persistent Redis, or a failover that lost the last writes).
const redis = await startRedisServer(7110)
t.teardown(redis.stop)
const DATABASE_URL = await privateDatabase('dataloss')

const backend = await scriptedBackend(async (_req, _n, res) => {
  await sleep(100)
  json(res, 200, { status: 'succeeded', result: { ok: true } })
})
t.teardown(backend.close)

const base = {
  DATABASE_URL,
  REDIS_URL: redis.url,
  INGESTION_URL: backend.url,
  INGESTION_CONCURRENCY: 2,
  INGESTION_BACKOFF_MS: 50,
  INGESTION_RECOVERY_INTERVAL_MS: 1000,
  INGESTION_RECOVERY_GRACE_MS: 1000,
}

t.test('Redis restarted empty under load: every accepted ingestion succeeds, no process restarted', async (t) => {
  const port = await freePort()
  // The periodic check is far away: what brings the schedules back here is the reconnection.
  const config = testConfig({ ...base, PUBLIC_URL: `http://127.0.0.1:${port}`, SCHEDULE_CHECK_INTERVAL_MS: 3_600_000 })
  const api = await buildApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await api.close())
  await api.listen({ port, host: '127.0.0.1' })
  const worker = await buildWorkerApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  await worker.ready()
  const running = await startWorkers(worker, QUEUE_NAMES)
  t.teardown(async () => { await running.close(); await worker.close() })

  const ed = await createUser(api, 'editor')
  const docs = await Promise.all([1, 2, 3].map(async () => (await createDocument(api, ed.id)).id))
  const accepted: string[] = []
  const refused: number[] = []
  const trigger = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const res = await api.inject({ method: 'POST', url: `/documents/${docs[i % docs.length] ?? ''}/ingestions`, headers: ed.headers, payload: {} })
      if (res.statusCode === 202) accepted.push(res.json().id as string)
      else refused.push(res.statusCode)
    }
  }
  const statuses = async (): Promise<string[]> => accepted.length === 0 ? [] : (await api.db.select({ status: ingestions.status }).from(ingestions).where(inArray(ingestions.id, accepted))).map(r => r.status)

  await trigger(30)
  t.equal(accepted.length, 30, 'all accepted before the restart')
  await eventually(async () => (await statuses()).some(s => s === 'succeeded'), 30_000)
  const before = await statuses()
  t.ok(before.filter(s => s === 'queued').length > 0, `a backlog when Redis dies (${before.join(',')})`)

  await redis.kill()
  await trigger(3) // refused (503) or accepted: only what was accepted must finish
  await redis.start()
  // the restarted Redis is empty: whatever schedule it holds from now on, the worker wrote again
  await eventually(async () => await worker.queues.ingestion.getJobScheduler('ingestion-recovery').catch(() => undefined), 30_000)
  t.pass('the recovery schedule is back, without a restart of the worker')
  await trigger(10)

  await eventually(async () => (await statuses()).every(s => s === 'succeeded'), 120_000, 250)
  t.same([...new Set(await statuses())], ['succeeded'], `every one of the ${accepted.length} accepted ingestions succeeded`)
  t.ok(refused.every(s => s === 503), `refused only with 503 while Redis was down (${refused.join(',')})`)
  const recovered = await api.db.select().from(ingestionEvents).where(inArray(ingestionEvents.ingestionId, accepted))
  t.ok(recovered.some(e => e.type === 'recovered'), 'the sweep re-enqueued the ingestions whose jobs Redis lost')
  for (const s of schedules) {
    if (s.id === 'ingestion-recovery' || typeof s.every === 'number') t.ok(await worker.queues[s.queue].getJobScheduler(s.id), `schedule ${s.id} is back`)
  }
  const [row] = await api.db.select().from(ingestions).where(eq(ingestions.id, accepted[0] ?? ''))
  t.equal(row?.status, 'succeeded')
})

t.test('an evicted schedule is re-created by the periodic check; readiness and metrics warn about an evicting Redis', async (t) => {
  await redis.kill()
  await redis.start()
  const config = testConfig({ ...base, SCHEDULE_CHECK_INTERVAL_MS: 1000 })
  const app = await buildApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await app.close())
  await app.ready()
  const running = await startWorkers(app, ['cleanup'])
  t.teardown(running.close)
  const first = await app.queues.cleanup.getJobScheduler('uploads-sweep')
  t.ok(first, 'scheduled at start')
  await app.queues.cleanup.removeJobScheduler('uploads-sweep')
  await eventually(async () => await app.queues.cleanup.getJobScheduler('uploads-sweep'), 20_000)
  t.pass('re-created by the periodic check')

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.equal(ready.json().warnings, undefined, 'noeviction: no warning')

  // a new process reads the policy afresh (each caches it for 30 s)
  await app.redis.config('SET', 'maxmemory-policy', 'allkeys-lru')
  const other = await buildApp(testConfig({ ...base }), { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await other.close())
  await other.ready()
  const warned = await other.inject({ method: 'GET', url: '/health/ready' })
  t.equal(warned.statusCode, 200, 'a warning, not unready')
  t.match(warned.json().warnings, [/maxmemory-policy is allkeys-lru/])
  const metrics = await other.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /quire_redis_evicts_keys\{policy="allkeys-lru"\} 1/)
})
