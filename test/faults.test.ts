import { test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, createUser, assertErrorShape, TEST_DATABASE_URL, TEST_REDIS_URL } from './helper.js'
import { proxyFor } from './tcp-proxy.js'

async function eventually (fn: () => Promise<boolean>, ms = 15000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return true
    await sleep(200)
  }
  return false
}

test('MySQL unreachable for a while: 503 in the shape, readiness fails, recovers by itself', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_DATABASE_URL, 3306)
  const app = await build(t, { DATABASE_URL: url })
  const admin = await createUser(app, 'admin')

  let res = await app.inject({ method: 'GET', url: '/users', headers: admin.headers })
  t.equal(res.statusCode, 200, 'works before the outage')

  await proxy.cut()
  res = await app.inject({ method: 'GET', url: '/users', headers: admin.headers })
  assertErrorShape(t, res, 503, 'service_unavailable')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().checks.db, 'fail')
  t.equal(ready.json().checks.redis, 'ok')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'liveness unaffected')

  await proxy.restore()
  t.ok(await eventually(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200), 'ready again')
  res = await app.inject({ method: 'GET', url: '/users', headers: admin.headers })
  t.equal(res.statusCode, 200, 'requests succeed again')
})

test('Redis unreachable: readiness fails, authenticated reads fall back to MySQL, queue writes 503, recovery', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_REDIS_URL, 6379)
  const app = await build(t, { REDIS_URL: url })
  const admin = await createUser(app, 'admin')

  await proxy.cut()
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().checks.redis, 'fail')
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: admin.headers })
  t.equal(me.statusCode, 200, 'the revocation check falls back to MySQL')
  await t.rejects(app.enqueue('noop', {}), 'enqueue fails fast instead of hanging')

  await proxy.restore()
  t.ok(await eventually(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200), 'ready again')
  const id = await app.enqueue('noop', { echo: 'back' })
  t.ok(id, 'enqueue works again')
})
