import { test } from 'tap'
import type { ServerResponse } from 'node:http'
import { build, createUser, privateDatabase } from '../helper.js'
import { startWorker } from '../helpers/processes.js'
import { eventually } from '../ingestion/helpers.js'
import { newDocument, receiver, register, streamOf, verify } from './helpers.js'

test('the worker SIGKILLed mid-delivery: another worker delivers the event (same webhook-id)', async (t) => {
  const held: ServerResponse[] = []
  const rx = await receiver(t, (_r, res) => {
    if (held.length === 0) { held.push(res); return undefined } // the first worker dies while we hold its request
    return 204
  })
  t.teardown(() => { for (const r of held) r.destroy() })
  // A database of its own: the relay would fan other files' events out to this endpoint too.
  const app = await build(t, { WEBHOOK_ALLOW_PRIVATE: true, DATABASE_URL: await privateDatabase('wh_kill') })
  const admin = await createUser(app, 'admin')
  const editor = await createUser(app, 'editor')
  const hook = await register(t, app, admin, rx.url(), ['document.created'])

  const worker = async () => await startWorker(t, app.config, { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RELAY_INTERVAL_MS: '100', WEBHOOK_TIMEOUT_MS: '60000', WORKER_LOCK_MS: '1000' })

  const first = await worker()
  const id = await newDocument(app, editor)
  await eventually(async () => held.length === 1, 60_000)
  await first.stop('SIGKILL')
  await worker()
  // Other test files may create documents meanwhile: follow the held event by its webhook-id.
  const heldId = rx.received[0]!.headers['webhook-id']
  const got = await eventually(async () => { const same = rx.received.filter(r => r.headers['webhook-id'] === heldId); return same.length >= 2 ? same : null }, 60_000)
  t.ok(streamOf(rx.received, id).length >= 1, 'our document\'s event arrived')
  t.doesNotThrow(() => verify(hook.secret, got[1]!), 'the second attempt is signed like the first')
  const delivered = await eventually(async () => {
    const items = (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries`, headers: admin.headers })).json().items as Array<{ eventId: string, status: string }>
    return items.find(d => d.eventId === heldId && d.status === 'delivered')
  }, 30_000)
  t.ok(delivered, 'delivered by the second worker')
})
