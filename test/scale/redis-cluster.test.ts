import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { inArray } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { buildApp, buildWorkerApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { QUEUE_NAMES } from '../../src/jobs/types.js'
import { bullPrefix } from '../../src/redis.js'
import { ingestions } from '../../drizzle/schema/index.js'
import { startCluster } from '../../scripts/redis-local.js'
import { createUser, privateDatabase, testConfig, testPrefix, TEST_PLUGIN_TIMEOUT } from '../helper.js'
import { createDocument, eventually, freePort, json, openSse, postCallback, scriptedBackend, waitForStatus } from '../ingestion/helpers.js'

// A three-master Redis Cluster of this file's own (scripts/redis-local.ts), two API processes and
// two workers on it, sharing one database and one key prefix, as separate machines would.
const cluster = await startCluster()
// Registered first, so it runs last. Every close here ends (test/scale/redis-cluster-close.test.ts
// shows each client lets its process exit, closed while connecting or with the nodes down), yet
// under tap this file's process has been seen to linger after its teardowns with nothing active
// but its stdout and stderr pipes (not found): once everything is closed, the file ends.
t.teardown(() => { setTimeout(() => process.exit(), 3000).unref() })
t.teardown(cluster.stop)
const DATABASE_URL = await privateDatabase('cluster')
/** A close that hangs on a cluster client that outlives it must not keep the later teardowns (the cluster's stop) from running. */
const bounded = async (close: () => Promise<unknown>): Promise<void> => { await Promise.race([close(), sleep(15_000, undefined, { ref: false })]) }

// ingestions with options.async are accepted (202) and wait for a callback; the others succeed at once
const backend = await scriptedBackend(async (req, _n, res) => {
  if (req.body.options?.async === true) return json(res, 202, { status: 'accepted' })
  await sleep(Number(req.body.options?.delay ?? 0))
  json(res, 200, { status: 'succeeded', result: { ok: true } })
})
t.teardown(backend.close)

const [portA, portB] = [await freePort(), await freePort()]
const config = testConfig({
  DATABASE_URL,
  REDIS_URL: 'redis://127.0.0.1:7101',
  REDIS_CLUSTER_NODES: cluster.seeds,
  REDIS_PREFIX: testPrefix('cluster'),
  INGESTION_URL: backend.url,
  // one public URL, as behind a load balancer: callbacks are signed for it
  PUBLIC_URL: `http://127.0.0.1:${portA}`,
  LOGIN_MAX_ATTEMPTS: 3,
  WORKER_LOCK_MS: 4000,
  INGESTION_CONCURRENCY: 4,
  INGESTION_BACKOFF_MS: 100,
  INGESTION_RECOVERY_INTERVAL_MS: 2000,
  INGESTION_RECOVERY_GRACE_MS: 5000,
})
const apis: FastifyInstance[] = []
for (const port of [portA, portB]) {
  const api = await buildApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await bounded(async () => await api.close()))
  await api.listen({ port, host: '127.0.0.1' })
  apis.push(api)
}
const [A, B] = apis as [FastifyInstance, FastifyInstance]
for (let i = 0; i < 2; i++) {
  const worker = await buildWorkerApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  await worker.ready()
  const running = await startWorkers(worker, QUEUE_NAMES)
  t.teardown(async () => await bounded(async () => { await running.close(); await worker.close() }))
}
const ed = await createUser(A, 'editor')
const doc = await createDocument(A, ed.id)
const trigger = async (app: FastifyInstance, options: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: { ...ed.headers, ...headers }, payload: { options } })

t.test('BullMQ keys carry one hash tag', async (t) => {
  t.equal(bullPrefix(config), `{${config.REDIS_PREFIX}}:bull`)
  t.equal((await A.inject({ method: 'GET', url: '/health/ready' })).json().status, 'ok')
})

t.test('login on one API, the session works on the other; the login throttle and the rate limit are shared', async (t) => {
  const user = await createUser(A, 'viewer')
  const login = await A.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
  t.equal(login.statusCode, 200)
  const me = await B.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${login.json().accessToken as string}` } })
  t.equal(me.statusCode, 200, 'B accepts the session A opened')

  const target = await createUser(A, 'viewer')
  for (const app of [A, B, A]) {
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: target.email, password: 'wrong password' } })).statusCode, 401)
  }
  const locked = await B.inject({ method: 'POST', url: '/auth/login', payload: { email: target.email, password: target.password } })
  t.equal(locked.statusCode, 429, 'three failures across both APIs lock the account on either')

  const first = await A.inject({ method: 'GET', url: '/auth/me', headers: user.headers })
  const second = await B.inject({ method: 'GET', url: '/auth/me', headers: user.headers })
  t.equal(Number(second.headers['x-ratelimit-remaining']), Number(first.headers['x-ratelimit-remaining']) - 1, 'one rate-limit counter for both')
})

t.test('SSE on B follows an ingestion triggered on A; idempotency keys and callback replay hold across APIs', async (t) => {
  const res = await trigger(A)
  t.equal(res.statusCode, 202)
  const sse = openSse(`http://127.0.0.1:${portB}`, res.json().id, ed.headers)
  t.teardown(sse.close)
  const messages = await sse.done
  t.ok(messages.some(m => m.data?.status === 'succeeded'), 'B streams the final status')

  const key = { 'idempotency-key': `k-${Date.now()}` }
  const one = await trigger(A, {}, key)
  const two = await trigger(B, {}, key)
  t.equal(two.json().id, one.json().id, 'the same key on the other API: the same ingestion')

  const pending = (await trigger(A, { async: true })).json().id as string
  await waitForStatus(A, ed.headers, pending, ['running'], 30_000)
  const body = { status: 'succeeded', result: { via: 'callback' } }
  // A replay is the same signed request: one timestamp for both (two clocks a second apart sign differently).
  const now = Date.now()
  t.equal((await postCallback(A, pending, body, { now })).statusCode, 200)
  const replay = await postCallback(B, pending, body, { now })
  t.equal(replay.statusCode, 409)
  t.equal(replay.json().code, 'callback_replayed', 'a replay on the other API is refused')
})

t.test('a logout on A ends the SSE stream on B at once (revocation fan-out over cluster pub/sub)', async (t) => {
  const s = await createUser(A, 'editor')
  const docOwned = await createDocument(A, s.id)
  const res = await A.inject({ method: 'POST', url: `/documents/${docOwned.id}/ingestions`, headers: s.headers, payload: { options: { async: true } } })
  const id = res.json().id as string
  await waitForStatus(A, s.headers, id, ['running'], 30_000)
  const sse = openSse(`http://127.0.0.1:${portB}`, id, s.headers)
  t.teardown(sse.close)
  t.equal(await sse.status, 200)
  t.equal((await A.inject({ method: 'POST', url: '/auth/logout', headers: s.headers })).statusCode, 204)
  await Promise.race([sse.done, sleep(20_000).then(() => { throw new Error('the stream on B did not end') })])
  t.pass('the stream on B ended')
  t.equal((await B.inject({ method: 'GET', url: '/auth/me', headers: s.headers })).statusCode, 401)
})

t.test('the master holding the queues killed and restarted mid-run: every ingestion succeeds', { skip: cluster.nodes.length === 0 ? 'a cluster started outside this test (scripts/redis-local.ts cluster up) is not killed' : false }, async (t) => {
  const accepted: string[] = []
  for (let i = 0; i < 24; i++) {
    const res = await trigger(i % 2 === 0 ? A : B, { delay: 150 })
    t.equal(res.statusCode, 202)
    accepted.push(res.json().id as string)
  }
  const statuses = async (): Promise<string[]> => (await A.db.select({ status: ingestions.status }).from(ingestions).where(inArray(ingestions.id, accepted))).map(r => r.status)
  await eventually(async () => (await statuses()).some(s => s === 'succeeded'), 30_000)
  const port = await cluster.masterOf(`{${config.REDIS_PREFIX}}:bull:ingestion:wait`)
  const node = cluster.nodes.find(n => n.port === port)
  t.ok(node, `master ${port} holds the queues`)
  await node?.kill()
  await sleep(500)
  await node?.start()
  await eventually(async () => (await statuses()).every(s => s === 'succeeded'), 120_000, 250)
  t.same([...new Set(await statuses())], ['succeeded'], `all ${accepted.length} ingestions succeeded`)
})
