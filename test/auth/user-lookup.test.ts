import t from 'tap'
import { assertErrorShape, build, createUser, uniqueEmail } from '../helper.js'

// Issue 23: sharing needs another user's id; a sharer finds one by exact email, throttled.

t.test('GET /users/lookup: exact email in any letter case, documents:share only, 404 for unknown and disabled', async (t) => {
  const app = await build(t)
  const editor = await createUser(app, 'editor')
  const viewer = await createUser(app, 'viewer')
  const email = uniqueEmail('friend')
  const friend = await createUser(app, 'viewer', { email, name: 'Friend' })
  const lookup = async (who: { headers: Record<string, string> }, q: string) =>
    await app.inject({ method: 'GET', url: `/users/lookup?email=${encodeURIComponent(q)}`, headers: who.headers })

  const found = await lookup(editor, email.toUpperCase())
  t.equal(found.statusCode, 200)
  t.same(found.json(), { id: friend.id, name: 'Friend', email }, 'id, name and email, nothing more')
  t.equal((await app.inject({ method: 'PUT', url: '/documents/00000000-0000-0000-0000-000000000000/shares/' + found.json().id, headers: editor.headers, payload: { access: 'read' } })).statusCode, 404, 'the id is a share target (the document is not there)')

  const denied = await lookup(viewer, email)
  assertErrorShape(t, denied, 403, 'forbidden')
  t.match(denied.json().message, /requires the documents:share permission/)

  assertErrorShape(t, await lookup(editor, uniqueEmail('nobody')), 404, 'not_found')
  const partial = await lookup(editor, email.replace(/^[^@]+/, 'friend'))
  assertErrorShape(t, partial, 404, 'not_found')
  assertErrorShape(t, await lookup(editor, 'friend'), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/users/lookup', headers: editor.headers }), 400, 'validation_failed')

  const admin = await createUser(app, 'admin')
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${friend.id}`, headers: admin.headers, payload: { disabled: true } })).statusCode, 200)
  const disabled = await lookup(editor, email)
  assertErrorShape(t, disabled, 404, 'not_found')
  t.equal(disabled.json().message, (await lookup(editor, uniqueEmail('nobody'))).json().message, 'disabled and unknown read the same')
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/users/lookup?email=${encodeURIComponent(email)}` }), 401, 'unauthorized')
})

t.test('GET /users/lookup is throttled per caller: 429 with Retry-After, hits and misses alike', async (t) => {
  const app = await build(t, { USER_LOOKUP_MAX: 3, USER_LOOKUP_WINDOW_SECONDS: 600 })
  const a = await createUser(app, 'editor')
  const b = await createUser(app, 'editor')
  const target = await createUser(app, 'viewer')
  const lookup = async (who: { headers: Record<string, string> }, q: string) =>
    await app.inject({ method: 'GET', url: `/users/lookup?email=${encodeURIComponent(q)}`, headers: who.headers })
  t.equal((await lookup(a, target.email)).statusCode, 200)
  t.equal((await lookup(a, uniqueEmail())).statusCode, 404)
  t.equal((await lookup(a, uniqueEmail())).statusCode, 404)
  const limited = await lookup(a, target.email)
  assertErrorShape(t, limited, 429, 'rate_limited')
  const retry = Number(limited.headers['retry-after'])
  t.ok(retry > 0 && retry <= 600, `Retry-After ${String(limited.headers['retry-after'])}`)
  t.match(limited.json().message, /^Too many user lookups, retry in \d+ seconds$/)
  t.equal((await lookup(b, target.email)).statusCode, 200, 'another caller has its own budget')
})
