import { test } from 'tap'
import { startRedisServer } from '../../scripts/redis-local.js'
import { createUser } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { apiAndWorker, newDocument, receiver, register, streamOf, verify } from './helpers.js'

// A Redis of this file's own, without persistence: killed and started again it comes back empty,
// as after a restart of a non-persistent Redis: every BullMQ job is gone.
const redis = await startRedisServer(7340)

test('a pending delivery whose job Redis lost is queued again by the sweep and delivered', async (t) => {
  t.teardown(redis.stop)
  let status = 500
  const { app } = await apiAndWorker(t, { REDIS_URL: redis.url, WEBHOOK_SWEEP_INTERVAL_MS: 500, SCHEDULE_CHECK_INTERVAL_MS: 1000 })
  const admin = await createUser(app, 'admin')
  const editor = await createUser(app, 'editor')
  const rx = await receiver(t, () => status)
  const hook = await register(t, app, admin, rx.url(), ['document.created', 'document.updated'])
  const id = await newDocument(app, editor)
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: editor.headers, payload: { title: 'before the loss' } })).statusCode, 200)

  // Both pending, the first attempted (500): its job waits in Redis for the next retry, the second's for the first.
  const pending = async () => (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries?status=pending`, headers: admin.headers })).json().items as Array<{ id: string, attempts: unknown[] }>
  await eventually(async () => { const p = await pending(); return p.length === 2 && p.some(d => d.attempts.length >= 1) }, 30_000)

  await redis.kill()
  await redis.start()
  await eventually(async () => app.redis.status === 'ready', 30_000)
  // (No check that the jobs are gone: a job in flight at the kill may still put itself back.
  // Without the sweep, WEBHOOK_SWEEP_INTERVAL_MS=0, this test times out below.)
  const before = rx.received.length
  status = 204

  const got = await eventually(async () => { const s = streamOf(rx.received.slice(before), id); return s.length >= 2 ? s : null }, 60_000)
  t.same(got.map(r => r.body.data.sequence), [1, 2], 'both events, in order, after the loss')
  for (const r of got) t.doesNotThrow(() => verify(hook.secret, r))
  await eventually(async () => (await pending()).length === 0, 30_000)
  const log = (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries`, headers: admin.headers })).json().items as Array<{ status: string }>
  t.same(log.map(d => d.status), ['delivered', 'delivered'], 'delivered after the loss')
})
