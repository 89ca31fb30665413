import { test } from 'tap'
import { and, eq } from 'drizzle-orm'
import { auditEvents, users } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser, privateDatabase } from '../helper.js'
import { makeKey } from './helpers.js'

// issue 21: service accounts have no password, cannot log in, are never the last admin, and use
// keys an admin makes for them.

test('POST /users kind service; listed and filtered; cannot log in; keys made by an admin', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const res = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { kind: 'service', name: 'ci-bot', role: 'viewer', grants: ['documents:create'] } })
  t.equal(res.statusCode, 201)
  const svc = res.json()
  t.match(svc, { kind: 'service', name: 'ci-bot', role: 'viewer', grants: ['documents:create'], disabled: false })
  t.match(svc.email, /@service\.invalid$/, 'a placeholder email')
  const [row] = await app.db.select().from(users).where(eq(users.id, svc.id))
  t.equal(row?.passwordHash, '', 'no password')

  const services = await app.inject({ url: '/users?kind=service&limit=100', headers: admin.headers })
  t.ok(services.json().items.some((u: { id: string }) => u.id === svc.id))
  t.ok(services.json().items.every((u: { kind: string }) => u.kind === 'service'))
  const humans = await app.inject({ url: '/users?kind=human&limit=100', headers: admin.headers })
  t.notOk(humans.json().items.some((u: { id: string }) => u.id === svc.id))
  t.equal((await app.inject({ url: `/users/${svc.id}`, headers: admin.headers })).json().kind, 'service')

  for (const password of ['', 'anything at all']) {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: svc.email, password: password || 'x' } })
    assertErrorShape(t, login, 401, 'invalid_credentials')
  }
  const [failed] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'auth.login_failed'), eq(auditEvents.subject, `user:${svc.id}`))).limit(1)
  t.match(failed?.payload, { reason: 'service_account' })

  for (const payload of [{ kind: 'service', name: 'x', role: 'viewer', password: 'a-password-123' }, { kind: 'service', name: 'x', role: 'viewer', email: 'a@b.test' }, { kind: 'service', role: 'viewer' }, { role: 'viewer', name: 'no email' }]) {
    assertErrorShape(t, await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload }), 400, 'validation_failed')
  }

  // keys for it: made by users:manage, within the account's permissions
  const k = await makeKey(app, admin, { userId: svc.id.toUpperCase(), scopes: ['documents:read', 'documents:create'] })
  const me = await app.inject({ url: '/auth/me', headers: k.headers })
  t.equal(me.json().id, svc.id, 'the key acts as the service account')
  const key = (await app.inject({ url: `/api-keys/${k.id}`, headers: admin.headers })).json()
  t.match(key, { userId: svc.id, createdBy: admin.id })
  t.equal((await app.inject({ url: `/api-keys?userId=${svc.id}`, headers: admin.headers })).json().items.length, 1)
  const beyond = await app.inject({ method: 'POST', url: '/api-keys', headers: admin.headers, payload: { name: 'x', userId: svc.id, scopes: ['documents:delete'] } })
  assertErrorShape(t, beyond, 400, 'scope_not_held')
  const editor = await createUser(app, 'editor')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/api-keys', headers: editor.headers, payload: { name: 'x', userId: svc.id, scopes: ['documents:read'] } }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/api-keys', headers: admin.headers, payload: { name: 'x', userId: editor.id, scopes: ['documents:read'] } }), 400, 'not_a_service_account')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/api-keys', headers: admin.headers, payload: { name: 'x', userId: '0190a0a0-0000-7000-8000-000000000000', scopes: ['documents:read'] } }), 404, 'not_found')
})

// "The last admin" is a property of the whole database: a database of its own.
test('a service account is never counted as the last admin', async (t) => {
  const DATABASE_URL = await privateDatabase('svcadmin', t)
  const app = await build(t, { DATABASE_URL })
  const person = await createUser(app, 'admin')
  const made = await app.inject({ method: 'POST', url: '/users', headers: person.headers, payload: { kind: 'service', name: 'robot admin', role: 'admin' } })
  t.equal(made.statusCode, 201)
  const other = await createUser(app, 'viewer')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/users/${person.id}`, headers: person.headers, payload: { role: 'viewer' } }), 409, 'last_admin')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${person.id}`, headers: person.headers }), 409, 'last_admin')
  // the service admin itself can be demoted or deleted freely: it never was "the last admin"
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${made.json().id}`, headers: person.headers, payload: { role: 'editor' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${made.json().id}`, headers: person.headers })).statusCode, 204)
  // with a second person as admin, the first may go
  await app.inject({ method: 'PATCH', url: `/users/${other.id}`, headers: person.headers, payload: { role: 'admin' } })
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${person.id}`, headers: person.headers, payload: { role: 'viewer' } })).statusCode, 200)
})
