import { test } from 'tap'
import { createHmac } from 'node:crypto'
import { build, createUser, assertErrorShape, TEST_DATABASE_URL } from '../helper.js'
import { proxyFor } from '../tcp-proxy.js'
import { createDocument, postCallback, callbackHeaders, eventually } from './helpers.js'
import { signedHeaders } from '../../src/domain/ingestion-signing.js'
import type { FastifyInstance } from 'fastify'
import { eq } from 'drizzle-orm'
import { ingestions } from '../../drizzle/schema/index.js'

/** The replay keys a test left (they expire by themselves, but tests clean up). */
async function dropReplayKeys (app: FastifyInstance): Promise<void> {
  const keys = await app.redis.keys(app.redisKey('ingestion-callback', '*'))
  if (keys.length > 0) await app.redis.del(...keys)
}

async function setup (app: FastifyInstance) {
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  const trigger = async () => (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })).json().id as string
  const read = async (id: string) => (await app.inject({ method: 'GET', url: `/ingestions/${id}`, headers: ed.headers })).json()
  return { ed, trigger, read }
}

test('a callback signed for one ingestion is refused on another', async (t) => {
  const app = await build(t)
  const { trigger, read } = await setup(app)
  const a = await trigger()
  const b = await trigger()
  // signed for A, sent to B (with or without B's id in the body)
  assertErrorShape(t, await postCallback(app, b, { status: 'succeeded', result: { forged: true } }, { signedFor: a }), 401, 'invalid_signature')
  assertErrorShape(t, await postCallback(app, b, { ingestionId: b, status: 'succeeded' }, { signedFor: a }), 401, 'invalid_signature')
  // the old scheme (HMAC over "<timestamp>.<raw body>" only) is no longer accepted
  const raw = JSON.stringify({ ingestionId: b, status: 'succeeded' })
  const ts = String(Math.floor(Date.now() / 1000))
  const legacy = { 'content-type': 'application/json', 'x-quire-timestamp': ts, 'x-quire-signature': 'sha256=' + createHmac('sha256', app.config.INGESTION_SECRET).update(`${ts}.${raw}`).digest('hex') }
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${b}/callback`, headers: legacy, payload: raw }), 401, 'invalid_signature')
  // signed for another method
  const other = { 'content-type': 'application/json', ...signedHeaders(app.config.INGESTION_SECRET, { method: 'PUT', path: `/ingestions/${b}/callback` }, raw) }
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${b}/callback`, headers: other, payload: raw }), 401, 'invalid_signature')
  t.equal((await read(b)).status, 'queued', 'B untouched')
  // the right signature applies; an ingestionId naming another ingestion is refused
  assertErrorShape(t, await postCallback(app, b, { ingestionId: a, status: 'succeeded' }), 400, 'ingestion_mismatch')
  const ok = await postCallback(app, b, { ingestionId: b.toUpperCase(), status: 'succeeded', result: { n: 1 } })
  t.same(ok.json(), { id: b, status: 'succeeded', changed: true })
  t.equal((await read(a)).status, 'queued', 'A untouched')
  await dropReplayKeys(app)
})

test('replay keys ignore the letter case of the id; a concurrent duplicate does not apply twice', async (t) => {
  const app = await build(t)
  const { trigger, read } = await setup(app)
  const id = await trigger()
  const raw = JSON.stringify({ status: 'failed', error: 'first' })
  const headers = callbackHeaders(app, id, raw)
  t.equal((await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw })).statusCode, 200)
  // the very same signed request, the id spelled in upper case: not a new callback
  const upper = await app.inject({ method: 'POST', url: `/ingestions/${id.toUpperCase()}/callback`, headers, payload: raw })
  t.ok([404, 409].includes(upper.statusCode), `refused (${upper.statusCode})`)
  if (upper.statusCode === 409) assertErrorShape(t, upper, 409, 'callback_replayed')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw }), 409, 'callback_replayed')

  // two identical requests at once: exactly one applies
  const id2 = await trigger()
  const raw2 = JSON.stringify({ status: 'succeeded', result: { once: true } })
  const headers2 = callbackHeaders(app, id2, raw2)
  const both = await Promise.all([id2, id2.toUpperCase()].map(async u => await app.inject({ method: 'POST', url: `/ingestions/${u}/callback`, headers: headers2, payload: raw2 })))
  const codes = both.map(r => r.statusCode).sort()
  t.equal(codes[0], 200, 'one applies')
  t.ok([404, 409].includes(codes[1]!), `the other is refused (${codes[1]})`)
  const applied = both.find(r => r.statusCode === 200)!
  t.same(applied.json(), { id: id2, status: 'succeeded', changed: true })
  const events = (await read(id2)).events.map((e: { type: string }) => e.type)
  t.same(events, ['queued', 'succeeded'], 'one status change')
  await dropReplayKeys(app)
})

test('a callback that failed with a 5xx is not remembered: the same signed request applies later; a refused one is', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_DATABASE_URL, 3306)
  const app = await build(t, { DATABASE_URL: url })
  const { trigger, read } = await setup(app)
  const id = await trigger()
  const raw = JSON.stringify({ ingestionId: id, status: 'succeeded', result: { words: 7 } })
  const headers = callbackHeaders(app, id, raw)

  await proxy.cut()
  const down = await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw })
  t.ok(down.statusCode >= 500, `5xx while MySQL is unreachable (${down.statusCode})`)
  assertErrorShape(t, down, down.statusCode)
  await proxy.restore()
  await eventually(async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200)

  const again = await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw })
  t.equal(again.statusCode, 200, 'delivered again, applied')
  t.same(again.json(), { id, status: 'succeeded', changed: true })
  t.same((await read(id)).result, { words: 7 })
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw }), 409, 'callback_replayed')

  // refused (succeeded -> failed): a refusal is an answer, remembered like an applied callback (so it
  // cannot be replayed into a later attempt cycle); only a failure to apply (5xx) is forgotten
  const raw2 = JSON.stringify({ status: 'failed', error: 'too late' })
  const headers2 = callbackHeaders(app, id, raw2)
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers: headers2, payload: raw2 }), 409, 'invalid_transition')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers: headers2, payload: raw2 }), 409, 'callback_replayed')
  t.equal(await app.redis.keys(app.redisKey('ingestion-callback', id, '*')).then(k => k.length), 2, 'the applied and the refused callback are remembered')
  await dropReplayKeys(app)
})

test('a refused callback is remembered: replayed after a retry it cannot apply to the new cycle', async (t) => {
  const app = await build(t)
  t.teardown(async () => await dropReplayKeys(app))
  const { ed, trigger, read } = await setup(app)
  const id = await trigger()
  // the callback timeout failed it; the backend's late success arrives afterwards
  await app.db.update(ingestions).set({ status: 'failed', lastError: 'no callback in time', finishedAt: new Date() }).where(eq(ingestions.id, id))
  const raw = JSON.stringify({ status: 'succeeded', result: { stale: true } })
  const headers = callbackHeaders(app, id, raw)
  const send = async () => await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw })
  assertErrorShape(t, await send(), 409, 'invalid_transition')
  t.equal((await app.inject({ method: 'POST', url: `/ingestions/${id}/retry`, headers: ed.headers })).statusCode, 202, 'a new attempt cycle')
  assertErrorShape(t, await send(), 409, 'callback_replayed')
  const now = await read(id)
  t.equal(now.status, 'queued', 'the new cycle is not marked succeeded by the old cycle\'s callback')
  t.equal(now.result, null)
})
