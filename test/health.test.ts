import { test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, assertErrorShape, testTempDir, TEST_DATABASE_URL } from './helper.js'
import { proxyFor } from './tcp-proxy.js'
import { sharedReadiness } from '../src/domain/health.js'

test('liveness and readiness against the real services', async (t) => {
  const app = await build(t)
  const live = await app.inject({ method: 'GET', url: '/health' })
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', checks: { db: 'ok', redis: 'ok', storage: 'ok' } })
})

test('readiness is 503 naming redis when Redis is unreachable, and other routes keep the error shape', async (t) => {
  const app = await build(t, { REDIS_URL: 'redis://127.0.0.1:1' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', checks: { db: 'ok', redis: 'fail', storage: 'ok' } })
  const live = await app.inject({ method: 'GET', url: '/health' })
  t.equal(live.statusCode, 200, 'liveness touches nothing')
  const missing = await app.inject({ method: 'GET', url: '/nothing-here' })
  assertErrorShape(t, missing, 404, 'not_found')
})

test('readiness is 503 naming db when MySQL is unreachable', async (t) => {
  const app = await build(t, { DATABASE_URL: 'mysql://root@127.0.0.1:1/quire_test' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().checks.db, 'fail')
  t.equal(ready.json().checks.redis, 'ok')
})

test('readiness names storage when the directory is unusable', async (t) => {
  const file = join(testTempDir('health'), 'a-file')
  writeFileSync(file, 'not a directory')
  const app = await build(t, { STORAGE_DIR: join(file, 'storage') })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().checks.storage, 'fail')
})

test('a flood of readiness probes costs the dependencies one check per HEALTH_READY_CACHE_MS', async (t) => {
  const app = await build(t)
  let pings = 0
  const ping = app.redis.ping.bind(app.redis)
  app.redis.ping = (async () => { pings++; return await ping() }) as typeof app.redis.ping
  const answers = await Promise.all(Array.from({ length: 200 }, async () => await app.inject({ method: 'GET', url: '/health/ready' })))
  t.ok(answers.every(r => r.statusCode === 200 && r.json().checks.redis === 'ok'), '200 concurrent probes: all 200')
  for (let i = 0; i < 20; i++) t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  t.ok(pings <= 2, `220 probes within the interval, ${pings} Redis check(s)`)
})

test('a probe after HEALTH_READY_CACHE_MS sees the state now: the database cut, then back', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_DATABASE_URL, 3306)
  const app = await build(t, { DATABASE_URL: url, HEALTH_READY_CACHE_MS: 300 })
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  await proxy.cut()
  await sleep(350)
  const cut = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(cut.statusCode, 503)
  t.equal(cut.json().checks.db, 'fail')
  await proxy.restore()
  let back = 503
  for (let i = 0; i < 50 && back !== 200; i++) {
    await sleep(350)
    back = (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode
  }
  t.equal(back, 200, 'ready again')
})

test('sharedReadiness: concurrent probes share one check, later ones within the interval reuse it, then a new check', async (t) => {
  let clock = 0
  let checks = 0
  let release: () => void = () => {}
  const deps = {
    db: async () => { checks++; await new Promise<void>(resolve => { release = resolve }) },
    redis: async () => {},
    storage: async () => {},
    log: { warn: () => {} },
  }
  const probe = sharedReadiness(deps, 1000, () => clock)
  const first = [probe(), probe(), probe()]
  await sleep(10)
  t.equal(checks, 1, 'three concurrent probes, one check')
  release()
  const results = await Promise.all(first)
  t.ok(results.every(r => r === results[0] && r.ok), 'one shared result')
  clock = 999
  t.equal(await probe(), results[0], 'within the interval: the same result')
  t.equal(checks, 1)
  clock = 1000
  const next = probe()
  await sleep(10)
  release()
  t.not(await next, results[0], 'after it: a new check')
  t.equal(checks, 2)
  const none = sharedReadiness(deps, 0, () => clock)
  const a = none()
  await sleep(10)
  release()
  await a
  const b = none()
  await sleep(10)
  release()
  await b
  t.equal(checks, 4, 'HEALTH_READY_CACHE_MS 0: each probe after the last one ended checks again')
})
