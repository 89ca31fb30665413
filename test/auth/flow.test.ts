import { createHmac } from 'node:crypto'
import { test } from 'tap'
import type { InjectOptions } from 'fastify'
import { eq } from 'drizzle-orm'
import { buildApp } from '../../src/build.js'
import { serverOptions } from '../../src/options.js'
import { refreshTokens, sessions, users } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser, testConfig, testPrefix, uniqueEmail } from '../helper.js'

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
function craftJwt (header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | null): string {
  const data = `${b64(header)}.${b64(payload)}`
  return `${data}.${secret === null ? '' : createHmac('sha256', secret).update(data).digest('base64url')}`
}

test('register -> login -> me -> refresh -> reuse -> logout, with every log line captured', async (t) => {
  const lines: string[] = []
  const config = testConfig({ LOG_LEVEL: 'trace' })
  const logger = { ...(serverOptions(config).logger as Record<string, unknown>), level: 'trace', stream: { write: (s: string) => { lines.push(s) } } }
  const app = await buildApp(config, { logger })
  t.teardown(async () => await app.close())
  await app.ready()
  const bodies: string[] = []
  const call = async (opts: InjectOptions) => {
    const res = await app.inject(opts)
    bodies.push(res.body)
    return res
  }

  const email = uniqueEmail('flow')
  const password = 'correct horse battery staple ü'
  let res = await call({ method: 'POST', url: '/auth/register', payload: { email: `  ${email.toUpperCase()} `, password, name: 'Flow' } })
  t.equal(res.statusCode, 201)
  const user = res.json().user
  t.same(Object.keys(user).sort(), ['createdAt', 'email', 'id', 'name', 'permissions', 'role'])
  t.equal(user.email, email, 'email normalised')
  t.equal(user.role, 'viewer')
  t.same(user.permissions, ['documents:read', 'ingestions:read'])

  res = await call({ method: 'POST', url: '/auth/register', payload: { email: email.toUpperCase(), password } })
  assertErrorShape(t, res, 409, 'email_taken')

  res = await call({ method: 'POST', url: '/auth/login', payload: { email: email.toUpperCase(), password } })
  t.equal(res.statusCode, 200)
  const first = res.json()
  t.equal(first.tokenType, 'Bearer')
  t.equal(first.expiresIn, config.ACCESS_TOKEN_TTL)
  t.equal(first.user.id, user.id)
  const auth = (tok: string) => ({ authorization: `Bearer ${tok}` })

  res = await call({ method: 'GET', url: '/auth/me', headers: auth(first.accessToken) })
  t.equal(res.statusCode, 200)
  // The registered user, plus the storage quota numbers (issue 24; QUOTA_DEFAULT_BYTES 0 = unlimited).
  t.same(res.json(), { ...user, usedBytes: 0, reservedBytes: 0, quotaBytes: 0 })

  res = await call({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  t.equal(res.statusCode, 200)
  const second = res.json()
  t.not(second.refreshToken, first.refreshToken)
  t.same(Object.keys(second).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'tokenType'])
  res = await call({ method: 'GET', url: '/auth/me', headers: auth(second.accessToken) })
  t.equal(res.statusCode, 200, 'new access token works')

  // Refresh tokens are stored only as hashes
  const stored = await app.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, second.refreshToken))
  t.equal(stored.length, 0, 'the raw token is not a key')

  // The old refresh token is now rotated: presenting it is reuse, which revokes the session
  res = await call({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  assertErrorShape(t, res, 401, 'token_revoked')
  res = await call({ method: 'GET', url: '/auth/me', headers: auth(second.accessToken) })
  assertErrorShape(t, res, 401, 'token_revoked')
  res = await call({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: second.refreshToken } })
  assertErrorShape(t, res, 401, 'token_revoked')

  // A fresh login, then logout: the access token and the refresh token die at once
  res = await call({ method: 'POST', url: '/auth/login', payload: { email, password } })
  const third = res.json()
  res = await call({ method: 'POST', url: '/auth/logout', headers: auth(third.accessToken) })
  t.equal(res.statusCode, 204)
  res = await call({ method: 'GET', url: '/auth/me', headers: auth(third.accessToken) })
  assertErrorShape(t, res, 401, 'token_revoked')
  res = await call({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: third.refreshToken } })
  assertErrorShape(t, res, 401, 'token_revoked')
  res = await call({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: 'not-a-token' } })
  assertErrorShape(t, res, 401, 'unauthorized')

  // Audit: register, login, reuse, logout, failed login with the email tried
  await call({ method: 'POST', url: '/auth/login', payload: { email, password: 'wrong password' } })
  const admin = await createUser(app, 'admin')
  res = await call({ method: 'GET', url: `/audit-events?actorId=${user.id}&limit=100`, headers: admin.headers })
  t.equal(res.statusCode, 200)
  const actions = res.json().items.map((e: { action: string }) => e.action)
  for (const a of ['auth.register', 'auth.login', 'auth.refresh_reuse', 'auth.logout']) t.ok(actions.includes(a), `audited ${a}`)
  res = await call({ method: 'GET', url: `/audit-events?action=auth.login_failed&subject=user:${user.id}`, headers: admin.headers })
  const failed = res.json().items[0]
  t.equal(failed.payload.email, email)
  t.equal(failed.payload.reason, 'wrong_password')
  t.equal(failed.ip, '127.0.0.1')
  t.ok(failed.requestId)

  // No response and no log line carries a password, a password hash or a refresh token
  const [row] = await app.db.select().from(users).where(eq(users.id, user.id))
  const hashes = (await app.db.select().from(refreshTokens)).map(r => r.tokenHash)
  t.ok(lines.length > 20, `captured ${lines.length} log lines`)
  const logText = lines.join('\n')
  const responseText = bodies.join('\n')
  for (const secret of [row?.passwordHash ?? 'x', ...hashes]) {
    t.notOk(logText.includes(secret), 'no hash in logs')
    t.notOk(responseText.includes(secret), 'no hash in responses')
  }
  t.notOk(/\$2[aby]\$/.test(logText + responseText), 'no bcrypt string anywhere')
  for (const tok of [first.refreshToken, second.refreshToken, third.refreshToken, first.accessToken]) t.notOk(logText.includes(tok), 'no token in logs')
  t.notOk(logText.includes(password), 'no password in logs')
  t.notOk(logText.includes('wrong password'), 'no tried password in logs')
})

test('same 401 for unknown email, wrong password and disabled account; registration switch', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'editor')
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail('nobody'), password: 'whatever-123' } })
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: 'whatever-123' } })
  assertErrorShape(t, unknown, 401, 'invalid_credentials')
  assertErrorShape(t, wrong, 401, 'invalid_credentials')
  t.equal(unknown.json().message, wrong.json().message)
  await app.db.update(users).set({ disabled: true }).where(eq(users.id, u.id))
  const disabled = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } })
  assertErrorShape(t, disabled, 401, 'invalid_credentials')
  t.equal(disabled.json().message, wrong.json().message)

  const closed = await build(t, { REGISTRATION_ENABLED: false })
  const res = await closed.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: 'long enough' } })
  assertErrorShape(t, res, 403, 'registration_closed')
})

test('long and multibyte passwords are not truncated at 72 bytes', async (t) => {
  const app = await build(t)
  const base = 'é'.repeat(40) // 80 bytes
  const u = await createUser(app, 'viewer', { password: base + 'A' })
  let res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: base + 'B' } })
  assertErrorShape(t, res, 401, 'invalid_credentials')
  res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: base + 'A' } })
  t.equal(res.statusCode, 200)
})

test('tampered, expired, wrong-secret and alg:none tokens are refused', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'viewer')
  const now = Math.floor(Date.now() / 1000)
  const payload = { sub: u.id, sid: u.sessionId, iat: now }
  const [h, p, s] = u.accessToken.split('.') as [string, string, string]
  const forged = b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'someone-else' })
  const cases: Array<[string, string, string]> = [
    ['tampered payload', `${h}.${forged}.${s}`, 'unauthorized'],
    ['tampered signature', `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`, 'unauthorized'],
    ['expired', craftJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, iat: now - 100, exp: now - 10 }, app.config.JWT_SECRET), 'token_expired'],
    ['wrong secret', craftJwt({ alg: 'HS256', typ: 'JWT' }, payload, 'another-secret-another-secret-0123456789'), 'unauthorized'],
    ['alg none', craftJwt({ alg: 'none', typ: 'JWT' }, payload, null), 'unauthorized'],
    ['HS512 with the right secret', craftJwt({ alg: 'HS512', typ: 'JWT' }, payload, app.config.JWT_SECRET), 'unauthorized'],
    ['garbage', 'abc.def.ghi', 'unauthorized'],
  ]
  for (const [name, token, code] of cases) {
    const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
    assertErrorShape(t, res, 401, code)
    t.pass(name)
  }
  const ok = craftJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, exp: now + 60 }, app.config.JWT_SECRET)
  const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${ok}` } })
  t.equal(res.statusCode, 200, 'a correctly signed token passes (control)')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me' }), 401, 'unauthorized')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: 'Basic abc' } }), 401, 'unauthorized')
})

test('a verified (cached) access token stops working when it expires, and its session is still checked each time', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'viewer')
  const exp = Math.floor(Date.now() / 1000) + 2
  const token = craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: u.id, sid: u.sessionId, iat: exp - 2, exp }, app.config.JWT_SECRET)
  const headers = { authorization: `Bearer ${token}` }
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers })).statusCode, 200, `use ${i + 1} before exp`)
  await new Promise(resolve => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 1100))
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers }), 401, 'token_expired')
  // a fresh token of the same session: verified once, then revoked; the revocation wins over the cache
  const token2 = craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: u.id, sid: u.sessionId, iat: exp, exp: exp + 600 }, app.config.JWT_SECRET)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token2}` } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: u.headers, payload: {} })).statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token2}` } }), 401, 'token_revoked')
})

test('two API instances sharing MySQL and Redis: a logout on one is honoured by the other at once', async (t) => {
  const REDIS_PREFIX = testPrefix('shared')
  const a = await build(t, { REDIS_PREFIX })
  const b = await build(t, { REDIS_PREFIX })
  const u = await createUser(a, 'editor')
  const other = await createUser(a, 'editor')
  t.equal((await b.inject({ method: 'GET', url: '/auth/me', headers: u.headers })).statusCode, 200, 'b accepts (and caches) the session')
  t.equal((await b.inject({ method: 'GET', url: '/auth/me', headers: other.headers })).statusCode, 200)
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: u.headers })).statusCode, 204)
  assertErrorShape(t, await b.inject({ method: 'GET', url: '/auth/me', headers: u.headers }), 401, 'token_revoked')

  // a role change made through one instance applies on the other
  const admin = await createUser(a, 'admin')
  t.equal((await b.inject({ method: 'GET', url: '/users', headers: other.headers })).statusCode, 403)
  t.equal((await a.inject({ method: 'PATCH', url: `/users/${other.id}`, headers: admin.headers, payload: { role: 'admin' } })).statusCode, 200)
  t.equal((await b.inject({ method: 'GET', url: '/users', headers: other.headers })).statusCode, 200, 'promotion seen by b')
  t.equal((await a.inject({ method: 'PATCH', url: `/users/${other.id}`, headers: admin.headers, payload: { disabled: true } })).statusCode, 200)
  assertErrorShape(t, await b.inject({ method: 'GET', url: '/auth/me', headers: other.headers }), 401)
})

test('password change, logout-all and the session list', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'viewer')
  const login = async (password: string) => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password }, headers: { 'user-agent': 'second-device' } })
  const second = (await login(u.password)).json()
  const third = (await login(u.password)).json()
  let res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: u.headers })
  t.equal(res.statusCode, 200)
  const list = res.json() as Array<{ id: string, current: boolean, userAgent: string }>
  t.equal(list.length, 3)
  t.equal(list.filter(s => s.current).length, 1)
  t.equal(list.find(s => s.current)?.id, u.sessionId)

  // revoke one session by id; an unknown or foreign id is 404
  // newest first: list[0] is the session `third` came from
  const thirdSid = list[0]?.id ?? ''
  t.not(thirdSid, u.sessionId)
  res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${thirdSid}`, headers: u.headers })
  t.equal(res.statusCode, 204)
  const me = async (tok: string) => await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${tok}` } })
  assertErrorShape(t, await me(third.accessToken), 401, 'token_revoked')
  t.equal((await me(second.accessToken)).statusCode, 200)
  const stranger = await createUser(app, 'viewer')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${stranger.sessionId}`, headers: u.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: '/auth/sessions/nope', headers: u.headers }), 404, 'not_found')
  t.equal((await me(stranger.accessToken)).statusCode, 200, 'stranger unaffected')

  res = await app.inject({ method: 'POST', url: '/auth/password', headers: u.headers, payload: { currentPassword: 'not-it-at-all', newPassword: 'a brand new one' } })
  assertErrorShape(t, res, 403, 'invalid_credentials')
  res = await app.inject({ method: 'POST', url: '/auth/password', headers: u.headers, payload: { currentPassword: u.password, newPassword: 'a brand new one' } })
  t.equal(res.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: u.headers })).statusCode, 200, 'own session survives')
  for (const p of [second, third]) {
    assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${p.accessToken}` } }), 401, 'token_revoked')
  }
  assertErrorShape(t, await login(u.password), 401, 'invalid_credentials')
  const fresh = (await login('a brand new one')).json()
  t.ok(fresh.accessToken)

  res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: u.headers })
  t.equal(res.statusCode, 204)
  for (const tok of [u.accessToken, fresh.accessToken]) {
    assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${tok}` } }), 401, 'token_revoked')
  }
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: fresh.refreshToken } }), 401, 'token_revoked')
})

test('concurrent refreshes with one token: exactly one wins (no grace window)', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'viewer')
  const results = await Promise.all([1, 2, 3].map(async () => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: u.refreshToken } })))
  const codes = results.map(r => r.statusCode).sort()
  t.same(codes, [200, 401, 401])
  const winner = results.find(r => r.statusCode === 200)?.json()
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${winner.accessToken as string}` } }), 401, 'token_revoked')
})

test('a refresh token of an expired session answers 401 token_expired', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'viewer')
  await app.db.update(sessions).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(sessions.id, u.sessionId))
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: u.refreshToken } }), 401, 'token_expired')
})
