import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { build, createUser, assertErrorShape, TEST_REDIS_URL } from '../helper.js'
import { proxyFor } from '../tcp-proxy.js'
import { ingestions } from '../../drizzle/schema/index.js'
import { createDocument, share, postCallback, callbackHeaders, randomKey, ingestionRow } from './helpers.js'
import { recoverIngestions } from '../../src/jobs/ingestion/recovery.js'

test('permissions: viewers cannot trigger, editors only on writable documents, reads follow visibility', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const other = await createUser(app, 'editor')
  const viewer = await createUser(app, 'viewer')
  const admin = await createUser(app, 'admin')
  const priv = await createDocument(app, owner.id)
  const internal = await createDocument(app, owner.id, { visibility: 'internal' })
  const shared = await createDocument(app, owner.id)
  await share(app, shared.id, other.id, 'write')

  let res = await app.inject({ method: 'POST', url: `/documents/${internal.id}/ingestions`, headers: viewer.headers, payload: {} })
  assertErrorShape(t, res, 403, 'forbidden')
  res = await app.inject({ method: 'POST', url: `/documents/${priv.id}/ingestions`, headers: other.headers, payload: {} })
  assertErrorShape(t, res, 404, 'not_found')
  res = await app.inject({ method: 'POST', url: `/documents/${internal.id}/ingestions`, headers: other.headers, payload: {} })
  assertErrorShape(t, res, 403, 'forbidden')
  res = await app.inject({ method: 'POST', url: `/documents/${shared.id}/ingestions`, headers: other.headers, payload: { pipeline: 'ocr', options: { lang: 'en' } } })
  t.equal(res.statusCode, 202, 'write share may trigger')
  const viaShare = res.json()
  t.match(viaShare, { documentId: shared.id, status: 'queued', pipeline: 'ocr', options: { lang: 'en' }, attempts: 0, requestedBy: other.id, lastError: null, result: null, startedAt: null, finishedAt: null })
  t.equal(viaShare.events[0].type, 'queued')
  res = await app.inject({ method: 'POST', url: `/documents/${priv.id}/ingestions`, headers: owner.headers })
  t.equal(res.statusCode, 202, 'owner may trigger, body optional')
  const onPriv = res.json()
  t.equal(onPriv.pipeline, 'default')
  res = await app.inject({ method: 'POST', url: `/documents/${internal.id}/ingestions`, headers: admin.headers, payload: {} })
  const onInternal = res.json()
  res = await app.inject({ method: 'POST', url: `/documents/${priv.id}/ingestions`, headers: owner.headers, payload: { bogus: 1 } })
  assertErrorShape(t, res, 400, 'validation_failed')
  res = await app.inject({ method: 'POST', url: '/documents/not-an-id/ingestions', headers: owner.headers, payload: {} })
  assertErrorShape(t, res, 404, 'not_found')

  // the viewer sees the internal document's ingestion only
  res = await app.inject({ method: 'GET', url: '/ingestions?limit=100', headers: viewer.headers })
  t.equal(res.statusCode, 200)
  const seen = res.json().items.map((i: { id: string }) => i.id)
  t.ok(seen.includes(onInternal.id), 'internal visible')
  t.notOk(seen.includes(onPriv.id), 'private not visible')
  t.notOk(seen.includes(viaShare.id), 'other private not visible')
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/ingestions/${onPriv.id}`, headers: viewer.headers }), 404, 'not_found')
  t.equal((await app.inject({ method: 'GET', url: `/ingestions/${onInternal.id}`, headers: viewer.headers })).statusCode, 200)
  // other sees the shared one; viewer cannot cancel what it can see
  res = await app.inject({ method: 'GET', url: `/ingestions?documentId=${shared.id}`, headers: other.headers })
  t.same(res.json().items.map((i: { id: string }) => i.id), [viaShare.id])
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${onInternal.id}/cancel`, headers: viewer.headers }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${onInternal.id}/cancel`, headers: other.headers }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${onPriv.id}/cancel`, headers: other.headers }), 404, 'not_found')
  // without ingestions:manage only your own: neither the write-share editor nor the document's owner cancels the other's
  const ownersOnShared = (await app.inject({ method: 'POST', url: `/documents/${shared.id}/ingestions`, headers: owner.headers, payload: {} })).json()
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${ownersOnShared.id}/cancel`, headers: other.headers }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${viaShare.id}/cancel`, headers: owner.headers }), 403, 'forbidden')
  t.equal((await app.inject({ method: 'POST', url: `/ingestions/${ownersOnShared.id}/cancel`, headers: owner.headers })).statusCode, 200, 'the requester cancels their own')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${ownersOnShared.id}/retry`, headers: other.headers }), 403, 'forbidden')
  // the admin (ingestions:manage) cancels anyone's
  res = await app.inject({ method: 'POST', url: `/ingestions/${onPriv.id}/cancel`, headers: admin.headers })
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'cancelled')
  t.ok(res.json().finishedAt)
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${onPriv.id}/cancel`, headers: admin.headers }), 409, 'invalid_transition')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${viaShare.id}/retry`, headers: other.headers }), 409, 'invalid_transition')
  res = await app.inject({ method: 'POST', url: `/ingestions/${onPriv.id}/retry`, headers: owner.headers })
  t.equal(res.statusCode, 202, 'owner retries a cancelled one')
  t.equal(res.json().status, 'queued')
  t.equal(res.json().finishedAt, null)
  t.same(res.json().events.map((e: { type: string }) => e.type), ['queued', 'cancelled', 'retried'])
  const job = await app.queues.ingestion.getJob(onPriv.id)
  t.ok(job, 'a new dispatch job exists after the retry')
})

test('idempotency, bulk, pagination and filters', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const ed2 = await createUser(app, 'editor')
  const docs = await Promise.all([1, 2, 3].map(async () => await createDocument(app, ed.id)))
  const key = randomKey()
  const first = await app.inject({ method: 'POST', url: `/documents/${docs[0]!.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  const again = await app.inject({ method: 'POST', url: `/documents/${docs[0]!.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  t.equal(first.statusCode, 202)
  t.equal(again.statusCode, 202)
  t.equal(again.json().id, first.json().id, 'same key, same user: same ingestion')
  const other = await app.inject({ method: 'POST', url: `/documents/${docs[1]!.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  assertErrorShape(t, other, 409, 'idempotency_key_reused')
  // concurrent requests with one key: one row
  const key2 = randomKey()
  const racing = await Promise.all([1, 2, 3, 4].map(async () => await app.inject({ method: 'POST', url: `/documents/${docs[2]!.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key2 }, payload: {} })))
  t.same(racing.map(r => r.statusCode), [202, 202, 202, 202])
  t.equal(new Set(racing.map(r => r.json().id)).size, 1, 'racing requests share one ingestion')
  // another user's same key is independent
  await share(app, docs[0]!.id, ed2.id, 'write')
  const theirs = await app.inject({ method: 'POST', url: `/documents/${docs[0]!.id}/ingestions`, headers: { ...ed2.headers, 'idempotency-key': key }, payload: {} })
  t.not(theirs.json().id, first.json().id)

  // bulk
  let res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: docs.map(d => d.id), pipeline: 'bulk' } })
  t.equal(res.statusCode, 202)
  t.same(res.json().items.map((i: { documentId: string }) => i.documentId), docs.map(d => d.id))
  res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: [] } })
  assertErrorShape(t, res, 400, 'validation_failed')
  res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: [docs[0]!.id, docs[0]!.id] } })
  assertErrorShape(t, res, 400, 'validation_failed')
  res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: Array.from({ length: 101 }, (_, i) => `x${i}`) } })
  assertErrorShape(t, res, 400, 'validation_failed')
  // options: free-form, but bounded (nesting and size) -> 400, never a 5xx, nothing written
  let deep: Record<string, unknown> = { leaf: true }
  for (let i = 0; i < 40; i++) deep = { n: deep }
  const countBefore = (await app.db.select().from(ingestions).where(eq(ingestions.documentId, docs[0]!.id))).length
  res = await app.inject({ method: 'POST', url: `/documents/${docs[0]!.id}/ingestions`, headers: ed.headers, payload: { options: deep } })
  assertErrorShape(t, res, 400, 'validation_failed')
  t.match(res.json().details, [{ path: '/options' }])
  res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: [docs[0]!.id], options: deep } })
  assertErrorShape(t, res, 400, 'validation_failed')
  res = await app.inject({ method: 'POST', url: `/documents/${docs[0]!.id}/ingestions`, headers: ed.headers, payload: { options: { blob: 'x'.repeat(70 * 1024) } } })
  assertErrorShape(t, res, 400, 'validation_failed')
  t.equal((await app.db.select().from(ingestions).where(eq(ingestions.documentId, docs[0]!.id))).length, countBefore, 'no row written')
  let fine: Record<string, unknown> = { leaf: [1, { a: null }] }
  for (let i = 0; i < 12; i++) fine = { n: fine }
  res = await app.inject({ method: 'POST', url: `/documents/${docs[0]!.id}/ingestions`, headers: ed.headers, payload: { options: fine } })
  t.equal(res.statusCode, 202, 'moderately nested options are fine')
  t.same(res.json().options, fine, 'and come back as sent')
  const invisible = await createDocument(app, ed2.id)
  const before = await app.db.select().from(ingestions).where(eq(ingestions.documentId, docs[1]!.id))
  res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: [docs[1]!.id, invisible.id] } })
  assertErrorShape(t, res, 404, 'not_found')
  t.match(res.json().message, invisible.id, 'names the id')
  const after = await app.db.select().from(ingestions).where(eq(ingestions.documentId, docs[1]!.id))
  t.equal(after.length, before.length, 'all or nothing: no row for the visible one')
  const bulkKey = randomKey()
  const b1 = await app.inject({ method: 'POST', url: '/ingestions', headers: { ...ed.headers, 'idempotency-key': bulkKey }, payload: { documentIds: [docs[1]!.id, docs[2]!.id] } })
  const b2 = await app.inject({ method: 'POST', url: '/ingestions', headers: { ...ed.headers, 'idempotency-key': bulkKey }, payload: { documentIds: [docs[1]!.id, docs[2]!.id] } })
  t.same(b2.json().items.map((i: { id: string }) => i.id), b1.json().items.map((i: { id: string }) => i.id), 'bulk idempotency')

  // pagination over ed's document 1 (newest first), filters
  const all: string[] = []
  let cursor: string | null = null
  do {
    const url: string = `/ingestions?documentId=${docs[1]!.id}&limit=1${cursor !== null ? `&cursor=${cursor}` : ''}`
    const page = await app.inject({ method: 'GET', url, headers: ed.headers })
    t.equal(page.statusCode, 200)
    all.push(...page.json().items.map((i: { id: string }) => i.id))
    cursor = page.json().nextCursor
  } while (cursor !== null)
  t.equal(all.length, 2)
  t.same(all, [...all].sort().reverse(), 'newest first')
  res = await app.inject({ method: 'GET', url: '/ingestions?cursor=garbage', headers: ed.headers })
  assertErrorShape(t, res, 400, 'invalid_cursor')
  res = await app.inject({ method: 'GET', url: '/ingestions?status=nope', headers: ed.headers })
  assertErrorShape(t, res, 400, 'validation_failed')
  res = await app.inject({ method: 'GET', url: `/ingestions?status=queued&documentId=${docs[2]!.id}`, headers: ed.headers })
  t.ok(res.json().items.length >= 2)
  t.ok(res.json().items.every((i: { status: string }) => i.status === 'queued'))
})

test('callback: signature, timestamp, replay, transitions, idempotence, late callback after cancel', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  const trigger = async () => (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })).json().id as string
  const id = await trigger()

  assertErrorShape(t, await postCallback(app, id, { status: 'succeeded' }, { secret: 'wrong-secret-wrong-secret' }), 401, 'invalid_signature')
  assertErrorShape(t, await postCallback(app, id, { status: 'succeeded' }, { now: Date.now() - 10 * 60_000 }), 401, 'invalid_signature')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers: { 'content-type': 'application/json' }, payload: '{"status":"succeeded"}' }), 401, 'invalid_signature')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers: { 'content-type': 'application/json' }, payload: '{"status":' }), 400, 'invalid_json')
  // a valid callback; the same headers over other bytes; the exact request again
  const sent = JSON.stringify({ status: 'failed' })
  const headers = callbackHeaders(app, id, sent)
  const good = await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: sent })
  t.equal(good.statusCode, 200, 'valid callback accepted')
  t.same(good.json(), { id, status: 'failed', changed: true })
  const tampered = await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: JSON.stringify({ status: 'succeeded' }) })
  assertErrorShape(t, tampered, 401, 'invalid_signature')
  const replay = await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: sent })
  assertErrorShape(t, replay, 409, 'callback_replayed')
  // the same final status again (fresh signature): no change; the opposite: 409
  const same = await postCallback(app, id, { status: 'failed', error: 'again' })
  t.same(same.json(), { id, status: 'failed', changed: false })
  assertErrorShape(t, await postCallback(app, id, { status: 'succeeded' }), 409, 'invalid_transition')
  assertErrorShape(t, await postCallback(app, id, { status: 'done' }), 400, 'validation_failed')
  assertErrorShape(t, await postCallback(app, id, { status: 'succeeded', extra: 1 }), 400, 'validation_failed')
  assertErrorShape(t, await postCallback(app, '0190a0a0-0000-7000-8000-000000000000', { status: 'succeeded' }), 404, 'not_found')
  assertErrorShape(t, await postCallback(app, id, { ingestionId: 'someone-else', status: 'failed' }), 400, 'ingestion_mismatch')
  const row = await ingestionRow(app, id)
  t.equal(row!.lastError, 'the backend reported a failure')

  // succeeded with a result
  const id2 = await trigger()
  const ok = await postCallback(app, id2, { ingestionId: id2, status: 'succeeded', result: { words: 3 } })
  t.same(ok.json(), { id: id2, status: 'succeeded', changed: true })
  const got = (await app.inject({ method: 'GET', url: `/ingestions/${id2}`, headers: ed.headers })).json()
  t.same(got.result, { words: 3 })
  t.ok(got.finishedAt)
  t.equal(got.events.at(-1).type, 'succeeded')

  // cancel, then a late callback is ignored
  const id3 = await trigger()
  t.equal((await app.inject({ method: 'POST', url: `/ingestions/${id3}/cancel`, headers: ed.headers })).statusCode, 200)
  const late = await postCallback(app, id3, { status: 'succeeded', result: { late: true } })
  t.same(late.json(), { id: id3, status: 'cancelled', changed: false })
  t.equal((await ingestionRow(app, id3))!.result, null)
  // the refused transition wrote no event (the UPDATE and its events go in one guarded batch)
  const after = (await app.inject({ method: 'GET', url: `/ingestions/${id3}`, headers: ed.headers })).json()
  t.same(after.events.map((e: { type: string }) => e.type), ['queued', 'cancelled'], 'no event from the ignored callback')
})

test('Redis down at trigger time: 503 and no row left in queued; the recovery sweep re-enqueues stragglers', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_REDIS_URL, 6379)
  const app = await build(t, { REDIS_URL: url })
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)

  await proxy.cut()
  const started = Date.now()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  assertErrorShape(t, res, 503, 'service_unavailable')
  t.ok(Date.now() - started < 5000, 'answers quickly')
  const bulk = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: [doc.id] } })
  assertErrorShape(t, bulk, 503, 'service_unavailable')
  const rows = await app.db.select().from(ingestions).where(eq(ingestions.documentId, doc.id))
  t.same(rows, [], 'no row was left behind')

  await proxy.restore()
  await new Promise(resolve => setTimeout(resolve, 1500))
  // A row whose enqueue never happened (e.g. the process died between insert and enqueue) is enqueued by the sweep.
  const ok = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(ok.statusCode, 202, 'works again')
  const id = ok.json().id
  const job = await app.queues.ingestion.getJob(id)
  await job!.remove()
  t.equal(await app.queues.ingestion.getJob(id), undefined, 'job lost')
  // Scoped to this row: the test database is shared with the other test files' ingestions.
  const swept = await recoverIngestions(app, 0, { ids: [id] })
  t.same(swept, { requeued: 1, failed: 0, rearmed: 0 }, 'sweep re-enqueued it')
  t.ok(await app.queues.ingestion.getJob(id), 'the job is back')
  const back = await app.queues.ingestion.getJob(id)
  t.same(await recoverIngestions(app, 0, { ids: [id] }), { requeued: 0, failed: 0, rearmed: 0 })
  const still = await app.queues.ingestion.getJob(id)
  t.equal(still?.timestamp, back?.timestamp, 'a live job is left alone')
  const recovered = (await app.inject({ url: `/ingestions/${id}`, headers: ed.headers })).json().events.filter((e: { type: string }) => e.type === 'recovered')
  t.equal(recovered.length, 1, 'recovered once')
})

test('recovery sweep: running rows whose job vanished get a callback timer, or fail when the window is over', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  const id = (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })).json().id
  await (await app.queues.ingestion.getJob(id))!.remove()
  await app.db.update(ingestions).set({ status: 'running', updatedAt: new Date(Date.now() - 5000) }).where(eq(ingestions.id, id))
  let res = await recoverIngestions(app, 1000, { ids: [id] })
  t.equal(res.rearmed, 1, 'waiting for a callback: the timer is re-armed')
  const timer = await app.queues.ingestion.getJob(`${id}.cb`)
  t.equal(await timer!.getState(), 'delayed')
  res = await recoverIngestions(app, 1000, { ids: [id] })
  t.equal(res.rearmed, 0, 'a live timer is left alone')
  await timer!.remove()
  await app.db.update(ingestions).set({ updatedAt: new Date(Date.now() - app.config.INGESTION_CALLBACK_TIMEOUT_MS - 1000) }).where(eq(ingestions.id, id))
  res = await recoverIngestions(app, 1000, { ids: [id] })
  t.equal(res.failed, 1)
  const row = await ingestionRow(app, id)
  t.equal(row!.status, 'failed')
  t.match(row!.lastError, /no dispatch job and no callback/)
})
