import { test } from 'tap'
import { assertErrorShape, build, createUser, uniqueEmail } from '../helper.js'

test('every bad body answers 400 validation_failed in the contract shape', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const viewer = await createUser(app, 'viewer')
  const email = uniqueEmail('val')
  const cases: Array<[string, string, string, unknown, Record<string, string>?]> = [
    ['register: missing email', 'POST', '/auth/register', { password: 'long enough' }],
    ['register: missing password', 'POST', '/auth/register', { email }],
    ['register: email not a string', 'POST', '/auth/register', { email: { a: 1 }, password: 'long enough' }],
    ['register: password not a string', 'POST', '/auth/register', { email, password: { p: 'long enough' } }],
    ['register: extra field', 'POST', '/auth/register', { email, password: 'long enough', role: 'admin' }],
    ['register: bad email', 'POST', '/auth/register', { email: 'not-an-email', password: 'long enough' }],
    ['register: short password', 'POST', '/auth/register', { email, password: 'seven77' }],
    ['register: long password', 'POST', '/auth/register', { email, password: 'x'.repeat(129) }],
    ['register: empty name', 'POST', '/auth/register', { email, password: 'long enough', name: '' }],
    ['register: array body', 'POST', '/auth/register', [{ email, password: 'long enough' }]],
    ['login: missing password', 'POST', '/auth/login', { email }],
    ['login: bad email', 'POST', '/auth/login', { email: 'nope', password: 'long enough' }],
    ['login: extra field', 'POST', '/auth/login', { email, password: 'long enough', remember: true }],
    ['login: empty password', 'POST', '/auth/login', { email, password: '' }],
    ['login: long password', 'POST', '/auth/login', { email, password: 'x'.repeat(129) }],
    ['refresh: missing token', 'POST', '/auth/refresh', {}],
    ['refresh: wrong type', 'POST', '/auth/refresh', { refreshToken: { t: 1 } }],
    ['refresh: extra field', 'POST', '/auth/refresh', { refreshToken: 'abc', accessToken: 'x' }],
    ['password: short new password', 'POST', '/auth/password', { currentPassword: viewer.password, newPassword: 'short' }, viewer.headers],
    ['password: long new password', 'POST', '/auth/password', { currentPassword: viewer.password, newPassword: 'y'.repeat(129) }, viewer.headers],
    ['password: missing current', 'POST', '/auth/password', { newPassword: 'long enough' }, viewer.headers],
    ['password: extra field', 'POST', '/auth/password', { currentPassword: viewer.password, newPassword: 'long enough', x: 1 }, viewer.headers],
    ['users: missing role', 'POST', '/users', { email, password: 'long enough' }, admin.headers],
    ['users: unknown role', 'POST', '/users', { email, password: 'long enough', role: 'root' }, admin.headers],
    ['users: unknown permission grant', 'POST', '/users', { email, password: 'long enough', role: 'viewer', grants: ['documents:fly'] }, admin.headers],
    ['users: grants not an array', 'POST', '/users', { email, password: 'long enough', role: 'viewer', grants: { a: 1 } }, admin.headers],
    ['users: short password', 'POST', '/users', { email, password: 'short', role: 'viewer' }, admin.headers],
    ['users: bad email', 'POST', '/users', { email: 'a@', password: 'long enough', role: 'viewer' }, admin.headers],
    ['users: extra field', 'POST', '/users', { email, password: 'long enough', role: 'viewer', disabled: false }, admin.headers],
    ['patch: unknown permission revoke', 'PATCH', `/users/${viewer.id}`, { revokes: ['users:everything'] }, admin.headers],
    ['patch: wrong role', 'PATCH', `/users/${viewer.id}`, { role: 'superuser' }, admin.headers],
    ['patch: disabled not boolean', 'PATCH', `/users/${viewer.id}`, { disabled: { yes: true } }, admin.headers],
    ['patch: email not patchable', 'PATCH', `/users/${viewer.id}`, { email: uniqueEmail() }, admin.headers],
    ['patch: password not patchable', 'PATCH', `/users/${viewer.id}`, { password: 'long enough' }, admin.headers],
  ]
  for (const [name, method, url, payload, headers] of cases) {
    const res = await app.inject({ method: method as 'POST', url, payload: payload as object, headers: headers ?? {} })
    t.equal(res.statusCode, 400, name)
    assertErrorShape(t, res, 400, 'validation_failed')
    t.ok(Array.isArray(res.json().details) && res.json().details.length > 0, `${name}: details`)
  }
  const res = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: '{"email":' })
  assertErrorShape(t, res, 400, 'invalid_json')

  const list = await app.inject({ method: 'GET', url: '/users?limit=500', headers: admin.headers })
  assertErrorShape(t, list, 400, 'validation_failed')
  const cursor = await app.inject({ method: 'GET', url: '/users?cursor=garbage!', headers: admin.headers })
  assertErrorShape(t, cursor, 400, 'invalid_cursor')
  const auditCursor = await app.inject({ method: 'GET', url: '/audit-events?cursor=abc', headers: admin.headers })
  assertErrorShape(t, auditCursor, 400, 'invalid_cursor')
})

test('login throttling: 429 with Retry-After after the configured failures, per account and per IP', async (t) => {
  const app = await build(t, { LOGIN_MAX_ATTEMPTS: 3, LOGIN_WINDOW_SECONDS: 60 })
  const victim = await createUser(app, 'viewer')
  const login = async (email: string, password: string, ip: string) =>
    await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip })

  for (let i = 0; i < 3; i++) assertErrorShape(t, await login(victim.email, 'wrong-password', '10.0.0.1'), 401, 'invalid_credentials')
  const res = await login(victim.email, 'wrong-password', '10.0.0.1')
  assertErrorShape(t, res, 429, 'rate_limited')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${retryAfter}`)
  t.equal(res.headers['x-ratelimit-remaining'], '0')
  t.equal(res.headers['x-ratelimit-limit'], '3')

  assertErrorShape(t, await login(victim.email, victim.password, '10.0.0.1'), 429, 'rate_limited')
  // per account: another IP is refused for this account too
  assertErrorShape(t, await login(victim.email, victim.password, '10.0.0.2'), 429, 'rate_limited')
  // per IP: the throttled IP is refused for another account too
  const other = await createUser(app, 'viewer')
  assertErrorShape(t, await login(other.email, other.password, '10.0.0.1'), 429, 'rate_limited')
  // unrelated IP and account: fine
  t.equal((await login(other.email, other.password, '10.0.0.3')).statusCode, 200)

  // unknown emails are throttled the same way (no enumeration through the throttle either)
  const ghost = uniqueEmail('ghost')
  for (let i = 0; i < 3; i++) assertErrorShape(t, await login(ghost, 'wrong-password', `10.0.1.${i}`), 401, 'invalid_credentials')
  assertErrorShape(t, await login(ghost, 'wrong-password', '10.0.1.9'), 429, 'rate_limited')

  // a success resets the account counter
  const u = await createUser(app, 'viewer')
  for (let i = 0; i < 2; i++) await login(u.email, 'nope-nope', `10.0.2.${i}`)
  t.equal((await login(u.email, u.password, '10.0.2.5')).statusCode, 200)
  for (let i = 0; i < 2; i++) assertErrorShape(t, await login(u.email, 'nope-nope', `10.0.2.${10 + i}`), 401, 'invalid_credentials')
  t.equal((await login(u.email, u.password, '10.0.2.20')).statusCode, 200)
})
