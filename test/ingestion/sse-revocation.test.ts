import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createUser, testConfig, type TestUser } from '../helper.js'
import { createSession } from '../../src/domain/sessions.js'
import { createDocument, eventually } from './helpers.js'

// Issue 18: an open SSE stream kept delivering after its session was logged out or revoked.
// Two API processes share one Redis prefix: the stream is on A (a real port), the revocation
// is made on A or on B.

interface Stream { text: () => string, ended: Promise<number>, isEnded: () => boolean, close: () => void }

async function twoApis (t: Test) {
  const shared = testConfig()
  const same = { REDIS_PREFIX: shared.REDIS_PREFIX, STORAGE_DIR: shared.STORAGE_DIR }
  const a = await build(t, same)
  const b = await build(t, same)
  await a.listen({ port: 0, host: '127.0.0.1' })
  return { a, b, base: `http://127.0.0.1:${(a.server.address() as AddressInfo).port}` }
}

/** A queued ingestion (no worker runs, so it stays open) on a document of `owner`. */
async function openIngestion (app: FastifyInstance, owner: TestUser): Promise<string> {
  const doc = await createDocument(app, owner.id)
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: owner.headers, payload: {} })
  if (res.statusCode !== 202) throw new Error(`trigger: ${res.statusCode} ${res.body}`)
  return res.json().id as string
}

/** Opens the stream and resolves once the snapshot arrived; `ended` resolves with ms from revocation call to end. */
async function openStream (base: string, id: string, token: string): Promise<Stream> {
  let text = ''
  let ended = false
  let endedAt = 0
  let resolveEnded: (at: number) => void = () => {}
  const endedP = new Promise<number>(resolve => { resolveEnded = resolve })
  const req = httpRequest(`${base}/ingestions/${id}/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } })
  const ready = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      if (res.statusCode !== 200) { reject(new Error(`stream: ${res.statusCode ?? 0}`)); return }
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d; if (text.includes('event: status')) resolve() })
      const done = (): void => { if (!ended) { ended = true; endedAt = Date.now(); resolveEnded(endedAt) } }
      res.on('end', done)
      res.on('close', done)
    })
    req.on('error', reject)
  })
  req.end()
  await ready
  return { text: () => text, ended: endedP, isEnded: () => ended, close: () => req.destroy() }
}

/** Runs `revoke`, then expects the stream to end within `ms`, with an `event: revoked` before it. */
async function expectEnds (t: Test, stream: Stream, revoke: () => Promise<unknown>, what: string, ms = 3000): Promise<void> {
  const t0 = Date.now()
  await revoke()
  const at = await Promise.race([stream.ended, sleep(ms).then(() => null)])
  t.ok(at !== null, `${what}: the stream ended`)
  if (at !== null) t.ok(at - t0 < ms, `${what}: within ${at - t0} ms`)
  t.match(stream.text(), /event: revoked\ndata: \{"code":"token_revoked"/, `${what}: told why`)
  stream.close()
}

test('logout on the same process ends the stream at once', async (t) => {
  const { a, base } = await twoApis(t)
  const u = await createUser(a, 'editor')
  const stream = await openStream(base, await openIngestion(a, u), u.accessToken)
  await expectEnds(t, stream, async () => await a.inject({ method: 'POST', url: '/auth/logout', headers: u.headers }), 'logout')
})

test('revocations made on another API process end the stream: DELETE /auth/sessions/:id, logout-all, password change', async (t) => {
  const { a, b, base } = await twoApis(t)
  const u = await createUser(a, 'editor')
  const id = await openIngestion(a, u)

  // DELETE /auth/sessions/:id from another session of the same user, on process B
  const s1 = await createSession(a, u.id)
  let stream = await openStream(base, id, s1.accessToken)
  await expectEnds(t, stream, async () => {
    const res = await b.inject({ method: 'DELETE', url: `/auth/sessions/${s1.sessionId}`, headers: u.headers })
    t.equal(res.statusCode, 204)
  }, 'DELETE /auth/sessions/:id on B')

  // a password change on B ends the other sessions' streams, not the changer's own
  const s2 = await createSession(a, u.id)
  stream = await openStream(base, id, s2.accessToken)
  const own = await openStream(base, id, u.accessToken)
  await expectEnds(t, stream, async () => {
    const res = await b.inject({ method: 'POST', url: '/auth/password', headers: u.headers, payload: { currentPassword: u.password, newPassword: 'a brand new password' } })
    t.equal(res.statusCode, 204)
  }, 'password change on B')
  await sleep(300)
  t.notOk(own.isEnded(), "the changer's own stream stays open")

  // logout-all on B ends it too
  await expectEnds(t, own, async () => await b.inject({ method: 'POST', url: '/auth/logout-all', headers: u.headers }), 'logout-all on B')
})

test('an admin disabling or deleting the user, or taking ingestions:read away, ends the stream; unrelated changes do not', async (t) => {
  const { a, b, base } = await twoApis(t)
  const admin = await createUser(a, 'admin')
  const bystander = await createUser(a, 'editor')

  const u1 = await createUser(a, 'editor')
  const s1 = await openStream(base, await openIngestion(a, u1), u1.accessToken)
  // another user's logout, and a change to u1 that keeps their access, leave the stream open
  await b.inject({ method: 'POST', url: '/auth/logout', headers: bystander.headers })
  t.equal((await b.inject({ method: 'PATCH', url: `/users/${u1.id}`, headers: admin.headers, payload: { name: 'Renamed' } })).statusCode, 200)
  t.equal((await b.inject({ method: 'PATCH', url: `/users/${u1.id}`, headers: admin.headers, payload: { revokes: ['documents:share'] } })).statusCode, 200)
  await sleep(500)
  t.notOk(s1.isEnded(), 'unrelated changes keep the stream')
  await expectEnds(t, s1, async () => await b.inject({ method: 'PATCH', url: `/users/${u1.id}`, headers: admin.headers, payload: { revokes: ['ingestions:read'] } }), 'ingestions:read revoked')

  const u2 = await createUser(a, 'editor')
  const s2 = await openStream(base, await openIngestion(a, u2), u2.accessToken)
  await expectEnds(t, s2, async () => await b.inject({ method: 'PATCH', url: `/users/${u2.id}`, headers: admin.headers, payload: { disabled: true } }), 'user disabled')

  const u3 = await createUser(a, 'editor')
  const s3 = await openStream(base, await openIngestion(a, u3), u3.accessToken)
  await expectEnds(t, s3, async () => await b.inject({ method: 'DELETE', url: `/users/${u3.id}?transferTo=${admin.id}`, headers: admin.headers }), 'user deleted')

  t.equal(a.sessionStreams.size, 0, 'nothing left watched on A')
  // and a revoked token cannot open a new stream
  const again = await a.inject({ method: 'GET', url: `/ingestions/${randomBytes(2).toString('hex')}/events`, headers: u2.headers })
  t.equal(again.statusCode, 401)
})

test('a user-state message re-checks the session itself: a revocation whose own message was lost still ends the stream', async (t) => {
  const { a, base } = await twoApis(t)
  const u = await createUser(a, 'editor')
  const id = await openIngestion(a, u)
  const stream = await openStream(base, id, u.accessToken)
  // revoke behind the plugin's back: only the Redis state, no message
  await a.redis.set(a.redisKey('sess', u.sessionId), '0', 'EX', 60)
  // the next check (a user-state message forces it without waiting for the 15 s sweep)
  await a.redis.publish(a.redisKey('auth-events'), JSON.stringify({ uid: u.id }))
  await eventually(async () => stream.isEnded(), 3000, 50)
  t.ok(stream.isEnded(), 'ended')
  stream.close()
})

test('issue 21: a stream opened with an API key ends when the key is revoked on another process; owner changes re-check the key', async (t) => {
  const { a, b, base } = await twoApis(t)
  const u = await createUser(a, 'editor')
  const admin = await createUser(a, 'admin')
  const made = async (): Promise<{ id: string, key: string }> => (await a.inject({ method: 'POST', url: '/api-keys', headers: u.headers, payload: { name: 'sse', scopes: ['ingestions:read', 'documents:read'] } })).json()
  const k1 = await made()
  const s1 = await openStream(base, await openIngestion(a, u), k1.key)
  // an unrelated change to the owner re-checks the stream against the key, which still may read
  await b.inject({ method: 'PATCH', url: `/users/${u.id}`, headers: admin.headers, payload: { grants: ['documents:manage'] } })
  await sleep(300)
  t.notOk(s1.isEnded(), 'a key stream survives a re-check')
  await expectEnds(t, s1, async () => await b.inject({ method: 'DELETE', url: `/api-keys/${k1.id}`, headers: u.headers }), 'key revoked on B')

  const k2 = await made()
  const s2 = await openStream(base, await openIngestion(a, u), k2.key)
  await expectEnds(t, s2, async () => await b.inject({ method: 'PATCH', url: `/users/${u.id}`, headers: admin.headers, payload: { revokes: ['ingestions:read'] } }), 'owner lost ingestions:read')
  t.equal(a.sessionStreams.size, 0, 'nothing left watched on A')
})
