import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { apiKeys, auditEvents } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser } from '../helper.js'
import { makeKey } from './helpers.js'

// issue 21: API keys are made once, shown once, stored as a hash, listed without their secret.

test('create, use, list, get, revoke', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const res = await app.inject({ method: 'POST', url: '/api-keys', headers: ed.headers, payload: { name: 'ci', scopes: ['documents:read', 'documents:create'] } })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['cache-control'], 'no-store')
  const created = res.json()
  t.match(created.key, /^qk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, 'qk_<public id>_<secret>')
  t.equal(Buffer.from(created.key.split('_').slice(2).join('_'), 'base64url').length, 32, '256-bit secret')
  t.equal(res.headers.location, `/api-keys/${created.id}`)
  t.equal(created.prefix, created.key.slice(0, 19))
  t.same(created.scopes, ['documents:read', 'documents:create'])
  t.equal(created.status, 'active')
  t.equal(created.userId, ed.id)
  t.ok(new Date(created.expiresAt).getTime() > Date.now() + 364 * 86400_000, 'default expiry: API_KEY_MAX_TTL_DAYS (365)')

  const [row] = await app.db.select().from(apiKeys).where(eq(apiKeys.id, created.id))
  t.not(row?.secretHash, undefined)
  t.notOk(JSON.stringify(row).includes(created.key.slice(20)), 'the secret is not stored, only its hash')

  const auth = { authorization: `Bearer ${created.key}` }
  const me = await app.inject({ url: '/auth/me', headers: auth })
  t.equal(me.statusCode, 200)
  t.equal(me.json().id, ed.id, 'the key acts as its owner')
  t.same(me.json().permissions, ['documents:read', 'documents:create'], '/auth/me tells what the key may do')

  const list = await app.inject({ url: '/api-keys', headers: ed.headers })
  t.equal(list.statusCode, 200)
  t.equal(list.json().items.length, 1)
  t.notOk(list.body.includes(created.key.slice(20)), 'never shown again')
  t.notOk('key' in list.json().items[0])
  const one = await app.inject({ url: `/api-keys/${created.id.toUpperCase()}`, headers: ed.headers })
  t.equal(one.statusCode, 200)
  t.notOk(one.body.includes(created.key.slice(20)))
  t.not(one.json().lastUsedAt, null, 'the use was recorded')

  // another user sees nothing of it
  const other = await createUser(app, 'editor')
  assertErrorShape(t, await app.inject({ url: `/api-keys/${created.id}`, headers: other.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/api-keys/${created.id}`, headers: other.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ url: `/api-keys?userId=${ed.id}`, headers: other.headers }), 403, 'forbidden')
  // an admin does
  const admin = await createUser(app, 'admin')
  t.equal((await app.inject({ url: `/api-keys?userId=${ed.id}`, headers: admin.headers })).json().items.length, 1)

  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${created.id}`, headers: ed.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${created.id}`, headers: ed.headers })).statusCode, 204, 'idempotent')
  assertErrorShape(t, await app.inject({ url: '/auth/me', headers: auth }), 401, 'api_key_revoked')
  t.equal((await app.inject({ url: `/api-keys/${created.id}`, headers: ed.headers })).json().status, 'revoked')

  const audit = await app.db.select().from(auditEvents).where(eq(auditEvents.subject, `api_key:${created.id}`))
  t.same(audit.map(a => a.action).sort(), ['api_key.create', 'api_key.revoke'], 'created and revoked are audited once each')
  t.notOk(JSON.stringify(audit).includes(created.key.slice(20)), 'no secret in audit rows')
})

test('scopes must be held, expiry is bounded, input is checked', async (t) => {
  const app = await build(t, { API_KEY_MAX_TTL_DAYS: 30 })
  const viewer = await createUser(app, 'viewer')
  const res = await app.inject({ method: 'POST', url: '/api-keys', headers: viewer.headers, payload: { name: 'x', scopes: ['documents:read', 'documents:delete', 'users:manage'] } })
  assertErrorShape(t, res, 400, 'scope_not_held')
  t.match(res.json().message, /documents:delete, users:manage/, 'names the ones the caller lacks')
  t.notMatch(res.json().message, /documents:read/)
  const post = async (payload: Record<string, unknown>) => await app.inject({ method: 'POST', url: '/api-keys', headers: viewer.headers, payload: { name: 'x', scopes: ['documents:read'], ...payload } })
  assertErrorShape(t, await post({ expiresAt: new Date(Date.now() + 31 * 86400_000).toISOString() }), 400, 'invalid_expiry')
  assertErrorShape(t, await post({ expiresAt: new Date(Date.now() - 1000).toISOString() }), 400, 'invalid_expiry')
  assertErrorShape(t, await post({ expiresAt: null }), 400, 'invalid_expiry')
  assertErrorShape(t, await post({ scopes: [] }), 400, 'validation_failed')
  assertErrorShape(t, await post({ scopes: ['documents:fly'] }), 400, 'validation_failed')
  assertErrorShape(t, await post({ name: '' }), 400, 'validation_failed')
  assertErrorShape(t, await post({ extra: 1 }), 400, 'validation_failed')
  const ok = await post({ expiresAt: new Date(Date.now() + 10 * 86400_000).toISOString(), scopes: ['documents:read', 'documents:read'] })
  t.equal(ok.statusCode, 201)
  t.same(ok.json().scopes, ['documents:read'], 'duplicates dropped')

  const unbounded = await build(t, { API_KEY_MAX_TTL_DAYS: 0 })
  const u = await createUser(unbounded, 'viewer')
  const never = await unbounded.inject({ method: 'POST', url: '/api-keys', headers: u.headers, payload: { name: 'x', scopes: ['documents:read'] } })
  t.equal(never.statusCode, 201)
  t.equal(never.json().expiresAt, null, 'API_KEY_MAX_TTL_DAYS=0: no expiry by default')
})

test('a key cannot make keys, change the password or manage sessions (403 session_required)', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const k = await makeKey(app, admin, { scopes: ['users:manage', 'documents:read'] })
  const other = await makeKey(app, admin, { scopes: ['documents:read'] })
  const calls = [
    { method: 'POST' as const, url: '/api-keys', payload: { name: 'x', scopes: ['documents:read'] } },
    { method: 'POST' as const, url: '/auth/password', payload: { currentPassword: admin.password, newPassword: 'another password 1' } },
    { method: 'POST' as const, url: '/auth/logout' },
    { method: 'POST' as const, url: '/auth/logout-all' },
    { method: 'GET' as const, url: '/auth/sessions' },
    { method: 'DELETE' as const, url: `/auth/sessions/${admin.sessionId}` },
    { method: 'DELETE' as const, url: `/api-keys/${other.id}` },
  ]
  for (const c of calls) assertErrorShape(t, await app.inject({ ...c, headers: k.headers }), 403, 'session_required')
  // the session still works; the other key too
  t.equal((await app.inject({ url: '/auth/sessions', headers: admin.headers })).statusCode, 200)
  t.equal((await app.inject({ url: '/auth/me', headers: other.headers })).statusCode, 200)
  // a key may list keys and revoke itself
  t.equal((await app.inject({ url: '/api-keys', headers: k.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${k.id}`, headers: k.headers })).statusCode, 204)
  assertErrorShape(t, await app.inject({ url: '/auth/me', headers: k.headers }), 401, 'api_key_revoked')
})

test('unknown, malformed and tampered keys: 401 api_key_invalid', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const k = await makeKey(app, ed, { scopes: ['documents:read'] })
  const tampered = k.key.slice(0, -3) + (k.key.endsWith('AAA') ? 'BBB' : 'AAA')
  for (const token of [tampered, 'qk_0000000000000000_' + 'A'.repeat(43), 'qk_short', k.key.toUpperCase()]) {
    assertErrorShape(t, await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } }), 401, 'api_key_invalid')
  }
  t.equal((await app.inject({ url: '/auth/me', headers: k.headers })).statusCode, 200, 'the real key still works')
})
