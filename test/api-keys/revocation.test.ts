import { test } from 'tap'
import { and, eq } from 'drizzle-orm'
import { apiKeys, auditEvents } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser, testPrefix } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { makeKey } from './helpers.js'

// issue 21: a key's powers follow its owner on the next request; revocation reaches every API
// process at once; expired keys, and keys of disabled or deleted owners, get 401s that say why.

test('owner demotion shrinks the key on the next request; a promotion does not widen it past its scopes', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const owner = await createUser(app, 'admin')
  const k = await makeKey(app, owner, { scopes: ['users:manage', 'documents:read'] })
  t.equal((await app.inject({ url: '/users', headers: k.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${owner.id}`, headers: admin.headers, payload: { role: 'viewer' } })).statusCode, 200)
  assertErrorShape(t, await app.inject({ url: '/users', headers: k.headers }), 403, 'forbidden')
  t.equal((await app.inject({ url: '/documents', headers: k.headers })).statusCode, 200, 'what the owner still has, the key keeps')
  t.same((await app.inject({ url: '/auth/me', headers: k.headers })).json().permissions, ['documents:read'])
  await app.inject({ method: 'PATCH', url: `/users/${owner.id}`, headers: admin.headers, payload: { role: 'admin' } })
  t.equal((await app.inject({ url: '/users', headers: k.headers })).statusCode, 200, 'back with the role')
  assertErrorShape(t, await app.inject({ url: '/audit-events', headers: k.headers }), 403, 'forbidden')
})

test('revoked on one API process: refused on another within a second', async (t) => {
  const REDIS_PREFIX = testPrefix('keys2')
  const a = await build(t, { REDIS_PREFIX })
  const b = await build(t, { REDIS_PREFIX })
  const ed = await createUser(a, 'editor')
  const k = await makeKey(a, ed, { scopes: ['documents:read'] })
  // b has the key in its cache and its state in Redis
  t.equal((await b.inject({ url: '/documents', headers: k.headers })).statusCode, 200)
  t.equal((await b.inject({ url: '/documents', headers: k.headers })).statusCode, 200)
  t.equal((await a.inject({ method: 'DELETE', url: `/api-keys/${k.id}`, headers: ed.headers })).statusCode, 204)
  const started = Date.now()
  const res = await eventually(async () => {
    const r = await b.inject({ url: '/documents', headers: k.headers })
    return r.statusCode === 401 ? r : null
  }, 1000, 10)
  t.ok(Date.now() - started < 1000, 'within a second')
  assertErrorShape(t, res, 401, 'api_key_revoked')
})

test('expiry: 401 api_key_expired, audited once a minute per key, on a process that knew the key and on a fresh one', async (t) => {
  const REDIS_PREFIX = testPrefix('keys-exp')
  const app = await build(t, { REDIS_PREFIX })
  const ed = await createUser(app, 'editor')
  const soon = await makeKey(app, ed, { scopes: ['documents:read'], expiresAt: new Date(Date.now() + 1500).toISOString() })
  t.equal((await app.inject({ url: '/documents', headers: soon.headers })).statusCode, 200)
  const res = await eventually(async () => {
    const r = await app.inject({ url: '/documents', headers: soon.headers })
    return r.statusCode === 401 ? r : null
  }, 15000, 100)
  assertErrorShape(t, res, 401, 'api_key_expired')

  const later = await makeKey(app, ed, { scopes: ['documents:read'] })
  await app.db.update(apiKeys).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(apiKeys.id, later.id))
  const fresh = await build(t, { REDIS_PREFIX })
  assertErrorShape(t, await fresh.inject({ url: '/documents', headers: later.headers }), 401, 'api_key_expired')
  assertErrorShape(t, await fresh.inject({ url: '/documents', headers: later.headers }), 401, 'api_key_expired')
  const rows = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'api_key.expired_use'), eq(auditEvents.subject, `api_key:${later.id}`)))
  t.equal(rows.length, 1, 'one audit row for two refused requests')
  t.equal(rows[0]?.apiKeyId, later.id)
  t.equal(rows[0]?.actorId, ed.id)
  t.equal((await app.inject({ url: `/api-keys/${later.id}`, headers: ed.headers })).json().status, 'expired')
})

test('owner disabled or deleted: 401 api_key_owner_disabled', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const owner = await createUser(app, 'editor')
  const k = await makeKey(app, owner, { scopes: ['documents:read'] })
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${owner.id}`, headers: admin.headers, payload: { disabled: true } })).statusCode, 200)
  assertErrorShape(t, await app.inject({ url: '/documents', headers: k.headers }), 401, 'api_key_owner_disabled')
  await app.inject({ method: 'PATCH', url: `/users/${owner.id}`, headers: admin.headers, payload: { disabled: false } })
  t.equal((await app.inject({ url: '/documents', headers: k.headers })).statusCode, 200, 'disabling suspends a key; re-enabling brings it back')
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${owner.id}`, headers: admin.headers })).statusCode, 204)
  assertErrorShape(t, await app.inject({ url: '/documents', headers: k.headers }), 401, 'api_key_owner_disabled')
  const [row] = await app.db.select().from(apiKeys).where(eq(apiKeys.id, k.id))
  t.equal(row?.revokedReason, 'user_deleted', 'a deleted user\'s keys are revoked')
})

test('every audit row made with a key records the key; lastUsedAt is written at most once a minute', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const k = await makeKey(app, admin, { scopes: ['users:manage', 'documents:read'] })
  const made = await app.inject({ method: 'POST', url: '/users', headers: k.headers, payload: { kind: 'service', name: 'audited', role: 'viewer' } })
  t.equal(made.statusCode, 201)
  const [row] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'user.create'), eq(auditEvents.subject, `user:${made.json().id}`)))
  t.equal(row?.apiKeyId, k.id, 'the key that made it')
  t.equal(row?.actorId, admin.id, 'acting as its owner')
  t.notOk(JSON.stringify(row).includes(k.key.slice(20)))
  const filtered = await app.inject({ url: `/audit-events?apiKeyId=${k.id}`, headers: admin.headers })
  t.equal(filtered.statusCode, 200)
  t.ok(filtered.json().items.length >= 1)
  t.ok(filtered.json().items.every((e: { apiKeyId: string }) => e.apiKeyId === k.id), 'GET /audit-events?apiKeyId= filters by key')

  const first = (await app.db.select().from(apiKeys).where(eq(apiKeys.id, k.id)))[0]?.lastUsedAt
  t.ok(first instanceof Date, 'the first use is recorded')
  for (let i = 0; i < 5; i++) await app.inject({ url: '/documents', headers: k.headers })
  const after = (await app.db.select().from(apiKeys).where(eq(apiKeys.id, k.id)))[0]?.lastUsedAt
  t.equal(after?.getTime(), first?.getTime(), 'not once per request')
})

test('per-key rate limit, besides the per-IP one', async (t) => {
  const app = await build(t, { API_KEY_RATE_LIMIT_MAX: 3 })
  const ed = await createUser(app, 'editor')
  const k = await makeKey(app, ed, { scopes: ['documents:read'] })
  const other = await makeKey(app, ed, { scopes: ['documents:read'] })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/documents', headers: k.headers })).statusCode, 200)
  const limited = await app.inject({ url: '/documents', headers: k.headers })
  assertErrorShape(t, limited, 429, 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After')
  t.equal(limited.headers['x-ratelimit-limit'], '3', 'the key\'s budget')
  t.equal((await app.inject({ url: '/documents', headers: other.headers })).statusCode, 200, 'another key has its own budget')
  t.equal((await app.inject({ url: '/documents', headers: ed.headers })).statusCode, 200, 'the session is not limited by the key')
  const wrong = `${k.key.slice(0, -4)}${k.key.endsWith('zzzz') ? 'yyyy' : 'zzzz'}`
  assertErrorShape(t, await app.inject({ url: '/documents', headers: { authorization: `Bearer ${wrong}` } }), 401, 'api_key_invalid')
})
