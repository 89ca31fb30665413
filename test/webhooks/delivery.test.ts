import { test } from 'tap'
import { createUser } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { apiAndWorker, newDocument, receiver, register, streamOf, verify } from './helpers.js'

test('document changes are delivered signed (standardwebhooks verifies; a tampered body does not), in order, with a log', async (t) => {
  const { app } = await apiAndWorker(t)
  const admin = await createUser(app, 'admin')
  const editor = await createUser(app, 'editor')
  const reader = await createUser(app, 'viewer')
  const rx = await receiver(t)
  const hook = await register(t, app, admin, rx.url())

  const id = await newDocument(app, editor)
  const patch = await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: editor.headers, payload: { title: 'Renamed' } })
  t.equal(patch.statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/documents/${id}/shares/${reader.id}`, headers: editor.headers, payload: { access: 'read' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: editor.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/restore`, headers: editor.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: admin.headers })).statusCode, 204)

  const want = ['document.created', 'document.updated', 'document.shared', 'document.trashed', 'document.restored', 'document.deleted']
  const got = await eventually(async () => { const s = streamOf(rx.received, id); return s.length >= want.length ? s : null }, 30_000)
  t.same(got.map(r => r.body.type), want, 'every change, in order')
  t.same(got.map(r => r.body.data.sequence), [1, 2, 3, 4, 5, 6], 'per-document sequence numbers')
  for (const r of got) t.doesNotThrow(() => verify(hook.secret, r), `${r.body.type} verifies`)
  const first = got[0]!
  t.equal(first.headers['webhook-id'], first.body.id, 'webhook-id is the event id')
  t.match(first.body.data, { id, ownerId: editor.id, filename: 'a.txt', status: 'ready', version: 1 }, 'data: the document as the API returns it')
  t.equal(got[1]!.body.data.title, 'Renamed')
  t.match(got[2]!.body.data, { documentId: id, userId: reader.id, access: 'read', previous: null })
  t.throws(() => verify(hook.secret, { headers: first.headers, raw: first.raw.replace('ready', 'fail!') }), 'a tampered body does not verify')
  t.throws(() => verify('whsec_' + Buffer.alloc(32, 1).toString('base64'), first), 'another secret does not verify')

  const log = await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries?limit=100`, headers: admin.headers })
  t.equal(log.statusCode, 200)
  const mine = log.json().items.filter((d: { eventId: string }) => got.some(r => r.body.id === d.eventId))
  t.equal(mine.length, want.length, 'one delivery per event')
  t.match(mine[0], { status: 'delivered', attempts: [{ statusCode: 204, error: null }] })
  t.ok(mine[0].attempts[0].durationMs >= 0)
  const failedOnly = await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries?status=failed`, headers: admin.headers })
  t.same(failedOnly.json().items, [], 'status filter')
})

test('user events, ping, redeliver (same webhook-id), responses logged up to 1 KiB', async (t) => {
  const { app } = await apiAndWorker(t)
  const admin = await createUser(app, 'admin')
  const rx = await receiver(t, () => 200)
  const hook = await register(t, app, admin, rx.url(), ['user.created', 'user.deleted'])
  const created = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: `wh-${Date.now()}@example.test`, password: 'password-123', role: 'viewer' } })
  t.equal(created.statusCode, 201)
  const userId = created.json().id as string
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${userId}`, headers: admin.headers })).statusCode, 204)
  const got = await eventually(async () => { const s = streamOf(rx.received, userId); return s.length >= 2 ? s : null }, 30_000)
  t.same(got.map(r => r.body.type), ['user.created', 'user.deleted'])
  t.match(got[0]!.body.data, { id: userId, role: 'viewer', sequence: 1 })
  t.notOk('passwordHash' in got[0]!.body.data, 'no secrets in data')

  const ping = await app.inject({ method: 'POST', url: `/webhooks/${hook.id}/test`, headers: admin.headers })
  t.equal(ping.statusCode, 202)
  const pinged = await eventually(async () => rx.received.find(r => r.body.type === 'webhook.ping'), 30_000)
  t.equal(pinged.body.data.webhookId, hook.id)
  t.doesNotThrow(() => verify(hook.secret, pinged))

  const deliveryId = ping.json().deliveryId as string
  const settled = await eventually(async () => {
    const items = (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries`, headers: admin.headers })).json().items as Array<{ id: string, status: string, attempts: Array<{ response: string }> }>
    return items.find(d => d.id === deliveryId && d.status === 'delivered')
  })
  t.equal(settled.attempts[0]!.response.length, 1024, 'the first 1 KiB of the answer')
  const again = await app.inject({ method: 'POST', url: `/webhooks/${hook.id}/deliveries/${deliveryId.toUpperCase()}/redeliver`, headers: admin.headers })
  t.equal(again.statusCode, 202)
  await eventually(async () => rx.received.filter(r => r.body.type === 'webhook.ping').length === 2, 30_000)
  const pings = rx.received.filter(r => r.body.type === 'webhook.ping')
  t.equal(pings[1]!.headers['webhook-id'], pings[0]!.headers['webhook-id'], 'a redelivery has the same webhook-id')
  t.doesNotThrow(() => verify(hook.secret, pings[1]!))
})

test('410 disables the endpoint (audited); a 302 is not followed and is retried', async (t) => {
  const { app } = await apiAndWorker(t)
  const admin = await createUser(app, 'admin')
  const target = await receiver(t)
  const gone = await receiver(t, () => 410)
  const moved = await receiver(t, (_r, res) => { res.writeHead(302, { location: target.url('/elsewhere') }).end(); return undefined })
  const a = await register(t, app, admin, gone.url())
  const b = await register(t, app, admin, moved.url())
  await app.inject({ method: 'POST', url: `/webhooks/${a.id}/test`, headers: admin.headers })
  await app.inject({ method: 'POST', url: `/webhooks/${b.id}/test`, headers: admin.headers })
  const disabled = await eventually(async () => {
    const w = (await app.inject({ method: 'GET', url: `/webhooks/${a.id}`, headers: admin.headers })).json()
    return w.status === 'disabled' ? w : null
  }, 30_000)
  t.match(disabled.statusReason, /410/)
  const audit = await app.inject({ method: 'GET', url: '/audit-events?action=webhook.disable', headers: admin.headers })
  t.ok(audit.json().items.some((e: { subject: string }) => e.subject === `webhook:${a.id}`), 'audited')
  await eventually(async () => moved.received.length >= 2, 30_000)
  t.equal(target.received.length, 0, 'the redirect target was never contacted')
  const log = (await app.inject({ method: 'GET', url: `/webhooks/${b.id}/deliveries`, headers: admin.headers })).json()
  t.equal(log.items[0].attempts[0].statusCode, 302)
})

test('a ping and a redelivery are sent once: the API queues them itself and the relay leaves them alone', async (t) => {
  // The relay queues every pending delivery not marked queued, every 10 ms here: a delivery the API
  // wrote unmarked before adding its own job was queued twice and could be sent twice.
  const { app, worker } = await apiAndWorker(t, { WEBHOOK_RELAY_INTERVAL_MS: 10, WEBHOOK_SWEEP_INTERVAL_MS: 0 })
  const admin = await createUser(app, 'admin')
  const rx = await receiver(t)
  const hook = await register(t, app, admin, rx.url(), ['user.created'])
  const n = 30
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const ping = await app.inject({ method: 'POST', url: `/webhooks/${hook.id}/test`, headers: admin.headers })
    t.equal(ping.statusCode, 202)
    ids.push(ping.json().deliveryId as string)
  }
  type Delivery = { id: string, status: string, attempts: unknown[] }
  const log = async (): Promise<Delivery[]> => (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries?limit=100`, headers: admin.headers })).json().items as Delivery[]
  const settled = async (): Promise<void> => {
    await eventually(async () => (await log()).filter(d => ids.includes(d.id) && d.status === 'delivered').length === ids.length, 60_000)
    // every job but the relay's own schedule done: a second job of a delivery would have run by now
    await eventually(async () => (await worker.app.queues.webhooks.getJobs(['active', 'waiting', 'delayed', 'prioritized'])).every(j => j.name === 'webhook-relay'), 60_000)
  }
  await settled()
  t.equal(rx.received.filter(r => r.body.type === 'webhook.ping').length, n, `${n} pings, each sent once`)
  t.ok((await log()).filter(d => ids.includes(d.id)).every(d => d.attempts.length === 1), 'one attempt each')

  for (const id of ids) t.equal((await app.inject({ method: 'POST', url: `/webhooks/${hook.id}/deliveries/${id}/redeliver`, headers: admin.headers })).statusCode, 202)
  await settled()
  t.equal(rx.received.filter(r => r.body.type === 'webhook.ping').length, 2 * n, `${n} redeliveries, each sent once`)
  t.ok((await log()).filter(d => ids.includes(d.id)).every(d => d.attempts.length === 2), 'two attempts each')
})
