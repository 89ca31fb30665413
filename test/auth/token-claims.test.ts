import { createHmac } from 'node:crypto'
import { test } from 'tap'
import { assertErrorShape, build, createUser } from '../helper.js'

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
const sign = (payload: Record<string, unknown>, secret: string): string => {
  const data = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`
}

// Issue 18: a token signed with the right secret is still refused when it lacks exp, sub or sid
// (or carries them with the wrong type), on a live session.
test('correctly signed tokens without exp, sub or sid are refused', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'editor')
  const now = Math.floor(Date.now() / 1000)
  const full = { sub: u.id, sid: u.sessionId, iat: now, exp: now + 600 }
  const secret = app.config.JWT_SECRET
  const call = async (token: string) => await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })

  t.equal((await call(sign(full, secret))).statusCode, 200, 'control: the complete token passes')
  const cases: Array<[string, Record<string, unknown>]> = [
    ['no exp', { sub: u.id, sid: u.sessionId, iat: now }],
    ['no sub', { sid: u.sessionId, iat: now, exp: now + 600 }],
    ['no sid', { sub: u.id, iat: now, exp: now + 600 }],
    ['nothing but exp', { exp: now + 600 }],
    ['exp as a string', { ...full, exp: String(now + 600) }],
    ['exp null', { ...full, exp: null }],
    ['sub as a number', { ...full, sub: 42 }],
    ['sid as an array', { ...full, sid: [u.sessionId] }],
    ['sid empty', { ...full, sid: '' }],
    ['sub not an id', { ...full, sub: 'admin' }],
  ]
  for (const [name, payload] of cases) {
    assertErrorShape(t, await call(sign(payload, secret)), 401, 'unauthorized')
    t.pass(name)
  }
  // also on a write route, not only /auth/me
  const noExp = sign({ sub: u.id, sid: u.sessionId, iat: now }, secret)
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${noExp}` } }), 401, 'unauthorized')
  t.equal((await app.inject({ url: '/auth/me', headers: u.headers })).statusCode, 200, 'the session is still alive')
})
