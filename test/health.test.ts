import { test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build, assertErrorShape, testTempDir } from './helper.js'

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
