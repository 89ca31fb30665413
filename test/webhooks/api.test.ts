import { test } from 'tap'
import { assertErrorShape, build, createUser } from '../helper.js'

test('webhooks:manage gates every route; admins have it by default, others get 403 before any lookup', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const editor = await createUser(app, 'editor')
  const granted = await createUser(app, 'viewer', { grants: ['webhooks:manage'] })
  const revoked = await createUser(app, 'admin', { revokes: ['webhooks:manage'] })
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: admin.headers })
  t.ok(me.json().permissions.includes('webhooks:manage'), 'admin default')
  const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
  const routes = [
    ['POST', '/webhooks', { url: 'http://example.com/hook', events: ['*'] }], ['GET', '/webhooks'], ['GET', `/webhooks/${id}`],
    ['PATCH', `/webhooks/${id}`, { description: 'x' }], ['DELETE', `/webhooks/${id}`], ['POST', `/webhooks/${id}/test`],
    ['GET', `/webhooks/${id}/deliveries`], ['POST', `/webhooks/${id}/deliveries/${id}/redeliver`],
  ] as const
  for (const [method, url, payload] of routes) {
    assertErrorShape(t, await app.inject({ method, url, headers: editor.headers, ...(payload !== undefined ? { payload } : {}) }), 403, 'forbidden')
    assertErrorShape(t, await app.inject({ method, url, headers: revoked.headers, ...(payload !== undefined ? { payload } : {}) }), 403, 'forbidden')
    t.equal((await app.inject({ method, url, ...(payload !== undefined ? { payload } : {}) })).statusCode, 401, `${method} ${url}: 401 without a token`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/webhooks', headers: granted.headers })).statusCode, 200, 'a grant is enough')
})

test('create shows the secret once; get, list, patch (rotate), delete; bad input is a 400, unknown ids 404', async (t) => {
  const app = await build(t, { WEBHOOK_ALLOW_PRIVATE: true })
  const admin = await createUser(app, 'admin')
  const res = await app.inject({ method: 'POST', url: '/webhooks', headers: admin.headers, payload: { url: 'http://127.0.0.1:9/hook', events: ['document.created', 'document.version_added'], description: 'search index' } })
  t.equal(res.statusCode, 201)
  const created = res.json()
  t.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a Standard Webhooks secret')
  t.equal(res.headers.location, `/webhooks/${created.id}`)
  t.match(created, { url: 'http://127.0.0.1:9/hook', events: ['document.created', 'document.version_added'], status: 'active', statusReason: null, description: 'search index', lastSuccessAt: null })

  const got = await app.inject({ method: 'GET', url: `/webhooks/${created.id.toUpperCase()}`, headers: admin.headers })
  t.equal(got.statusCode, 200, 'ids in any letter case')
  t.notOk('secret' in got.json(), 'never shown again')
  t.notOk(got.body.includes(created.secret.slice(6)), 'not even in part')
  const [row] = await app.db.$client.query('SELECT secret FROM webhook_endpoints WHERE id = ?', [created.id]) as unknown as [Array<{ secret: string }>]
  t.notOk(row[0]!.secret.includes(created.secret.slice(6)), 'stored encrypted')
  t.equal(app.webhooks.deliver.box.open(row[0]!.secret), created.secret, 'and readable by the worker')

  const list = await app.inject({ method: 'GET', url: '/webhooks?limit=1', headers: admin.headers })
  t.equal(list.json().items.length, 1)
  t.notOk('secret' in list.json().items[0])

  const patched = await app.inject({ method: 'PATCH', url: `/webhooks/${created.id}`, headers: admin.headers, payload: { events: ['*'], status: 'disabled', description: null } })
  t.match(patched.json(), { events: ['*'], status: 'disabled', statusReason: 'disabled by an admin', description: null })
  t.notOk('secret' in patched.json())
  const rotated = await app.inject({ method: 'PATCH', url: `/webhooks/${created.id}`, headers: admin.headers, payload: { rotateSecret: true, status: 'active' } })
  t.match(rotated.json(), { status: 'active', statusReason: null })
  t.match(rotated.json().secret, /^whsec_/)
  t.not(rotated.json().secret, created.secret, 'a new secret')

  for (const payload of [
    { url: 'ftp://example.com/x', events: ['*'] }, { url: 'http://example.com/x', events: [] }, { url: 'http://example.com/x', events: ['document.nope'] },
    { url: 'http://example.com/x' }, { url: 'http://example.com/x', events: ['*'], extra: 1 }, { url: 'http://user:pw@example.com/x', events: ['*'] },
    { url: 'http://exa mple.com/x', events: ['*'] },
  ]) assertErrorShape(t, await app.inject({ method: 'POST', url: '/webhooks', headers: admin.headers, payload }), 400)

  const missing = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/webhooks/${missing}`, headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/webhooks/not-an-id', headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/webhooks/${created.id}/deliveries/${missing}/redeliver`, headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/webhooks/${created.id}/deliveries?cursor=zzz`, headers: admin.headers }), 400, 'invalid_cursor')

  const ping = await app.inject({ method: 'POST', url: `/webhooks/${created.id}/test`, headers: admin.headers })
  t.equal(ping.statusCode, 202, 'queued (nobody runs the queue here)')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/webhooks/${created.id}/deliveries/${ping.json().deliveryId}/redeliver`, headers: admin.headers }), 409, 'delivery_pending')
  const log = await app.inject({ method: 'GET', url: `/webhooks/${created.id}/deliveries?status=pending`, headers: admin.headers })
  t.match(log.json().items, [{ id: ping.json().deliveryId, type: 'webhook.ping', status: 'pending', attempts: [] }])

  t.equal((await app.inject({ method: 'POST', url: `/webhooks/${created.id}/test`, headers: admin.headers })).statusCode, 202, 'a second delivery')
  t.equal((await app.inject({ method: 'DELETE', url: `/webhooks/${created.id}`, headers: admin.headers })).statusCode, 204, 'deleted with its deliveries')
  const [left] = await app.db.$client.query('SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = ?', [created.id]) as unknown as [Array<{ n: number }>]
  t.equal(Number(left[0]!.n), 0, 'its delivery log went with it')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/webhooks/${created.id}`, headers: admin.headers }), 404, 'not_found')
  const audit = await app.inject({ method: 'GET', url: `/audit-events?subject=webhook:${created.id}&limit=100`, headers: admin.headers })
  t.same(audit.json().items.map((e: { action: string }) => e.action).sort(), ['webhook.create', 'webhook.delete', 'webhook.test', 'webhook.test', 'webhook.update', 'webhook.update'])
})

test('SSRF: URLs resolving to loopback, private, link-local or metadata addresses are refused at creation', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  for (const url of [
    'http://localhost:8080/hook', 'http://127.0.0.1/hook', 'http://10.1.2.3/hook', 'http://192.168.1.1/hook', 'http://172.20.0.1/hook',
    'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook', 'http://[fd00:ec2::254]/hook', 'http://[::ffff:127.0.0.1]/hook', 'http://0.0.0.0/hook',
    'http://100.64.0.1/hook', 'http://2130706433/hook', 'http://0x7f000001/hook',
  ]) {
    const res = await app.inject({ method: 'POST', url: '/webhooks', headers: admin.headers, payload: { url, events: ['*'] } })
    assertErrorShape(t, res, 400, 'webhook_url_refused')
  }
  const created = await app.inject({ method: 'POST', url: '/webhooks', headers: admin.headers, payload: { url: 'http://93.184.215.14/hook', events: ['*'] } })
  t.equal(created.statusCode, 201, 'a public address is fine')
  const moved = await app.inject({ method: 'PATCH', url: `/webhooks/${created.json().id}`, headers: admin.headers, payload: { url: 'http://127.0.0.1:1/x' } })
  assertErrorShape(t, moved, 400, 'webhook_url_refused')
  await app.inject({ method: 'DELETE', url: `/webhooks/${created.json().id}`, headers: admin.headers })
})

test('the delivery log is purged after WEBHOOK_LOG_RETENTION_DAYS; pending deliveries stay', async (t) => {
  const app = await build(t, { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_LOG_RETENTION_DAYS: 2 })
  const admin = await createUser(app, 'admin')
  const hook = (await app.inject({ method: 'POST', url: '/webhooks', headers: admin.headers, payload: { url: 'http://127.0.0.1:9/hook', events: ['*'] } })).json()
  t.teardown(async () => { await app.inject({ method: 'DELETE', url: `/webhooks/${hook.id}`, headers: admin.headers }) })
  const old = (await app.inject({ method: 'POST', url: `/webhooks/${hook.id}/test`, headers: admin.headers })).json()
  const pending = (await app.inject({ method: 'POST', url: `/webhooks/${hook.id}/test`, headers: admin.headers })).json()
  const threeDaysAgo = new Date(Date.now() - 3 * 24 * 3600_000)
  await app.db.$client.query("UPDATE webhook_deliveries SET status = 'delivered', updated_at = ? WHERE id = ?", [threeDaysAgo, old.deliveryId])
  await app.db.$client.query('UPDATE webhook_events SET relayed_at = ? WHERE id IN (?, ?)', [threeDaysAgo, old.eventId, pending.eventId])
  const { processors } = await import('../../src/jobs/processors.js')
  const res = await processors['webhook-purge'].process(app, { data: {} } as never) as { deliveries: number, events: number }
  t.ok(res.deliveries >= 1 && res.events >= 1)
  const items = (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries`, headers: admin.headers })).json().items as Array<{ id: string }>
  t.same(items.map(d => d.id), [pending.deliveryId], 'the settled one is gone, the pending one stays')
  const [events] = await app.db.$client.query('SELECT id FROM webhook_events WHERE id IN (?, ?)', [old.eventId, pending.eventId]) as unknown as [Array<{ id: string }>]
  t.same(events.map(e => e.id), [pending.eventId], 'its event too; a pending delivery keeps its event')
})
