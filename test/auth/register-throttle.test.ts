import { test } from 'tap'
import { assertErrorShape, build, createUser, uniqueEmail } from '../helper.js'

// Issue 18: POST /auth/register with a taken email was unthrottled (an account oracle, a bcrypt
// hash each). It now counts on the login throttle's counters, per IP and per account.

const register = (email: string, ip = '10.0.0.1') => ({ method: 'POST' as const, url: '/auth/register', remoteAddress: ip, payload: { email, password: 'long enough pw' } })

test('taken emails are throttled per IP: 429 + Retry-After in the error shape', async (t) => {
  const app = await build(t, { LOGIN_MAX_ATTEMPTS: 3, LOGIN_WINDOW_SECONDS: 60 })
  const victims = await Promise.all([0, 1, 2, 3].map(async () => await createUser(app, 'viewer')))
  for (const v of victims.slice(0, 3)) {
    const res = await app.inject(register(v.email.toUpperCase(), '10.0.0.1'))
    assertErrorShape(t, res, 409, 'email_taken')
    const body = res.json()
    t.notMatch(res.body, v.id, 'the 409 names no user id')
    t.equal(Object.keys(body).includes('user'), false)
  }
  // the IP has used its failures: another taken email, and even a free one, are refused before any work
  const limited = await app.inject(register(victims[3]!.email, '10.0.0.1'))
  assertErrorShape(t, limited, 429, 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60, 'Retry-After within the window')
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  const fresh = uniqueEmail('free')
  assertErrorShape(t, await app.inject(register(fresh, '10.0.0.1')), 429, 'rate_limited')
  // the account was not created behind the 429
  const login = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '10.0.0.9', payload: { email: fresh, password: 'long enough pw' } })
  assertErrorShape(t, login, 401, 'invalid_credentials')
  // another IP is not affected
  t.equal((await app.inject(register(uniqueEmail('other'), '10.0.0.2'))).statusCode, 201)
  // one budget with login: the throttled IP cannot switch to probing through login either
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '10.0.0.1', payload: { email: victims[0]!.email, password: 'wrong password' } }), 429, 'rate_limited')
  // audited like failed logins
  const rows = await app.db.$client.query("SELECT payload FROM audit_events WHERE action = 'auth.register_failed' AND ip = '10.0.0.1'") as unknown as [Array<{ payload: unknown }>]
  t.equal(rows[0].length, 3, 'each taken email is audited')
})

test('taken emails are throttled per account, from any IP', async (t) => {
  const app = await build(t, { LOGIN_MAX_ATTEMPTS: 2, LOGIN_WINDOW_SECONDS: 60 })
  const victim = await createUser(app, 'viewer')
  assertErrorShape(t, await app.inject(register(victim.email, '10.1.0.1')), 409, 'email_taken')
  assertErrorShape(t, await app.inject(register(` ${victim.email.toUpperCase()} `, '10.1.0.2')), 409, 'email_taken')
  const res = await app.inject(register(victim.email, '10.1.0.3'))
  assertErrorShape(t, res, 429, 'rate_limited')
  t.ok(Number(res.headers['retry-after']) > 0)
  // successful registrations do not count
  for (let i = 0; i < 3; i++) t.equal((await app.inject(register(uniqueEmail('ok'), '10.1.0.4'))).statusCode, 201)
})
