import t from 'tap'
import { assertErrorShape, build, createUser, uniqueEmail } from './helper.js'
import { upload } from './documents/helpers.js'
import { PERMISSIONS } from '../src/domain/permissions.js'

// Issue 23: errors say what was wrong and what to do.

t.test('an unknown grant or revoke is one 400 listing the permission names', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const user = await createUser(app, 'viewer')
  const cases = [
    { method: 'POST' as const, url: '/users', payload: { email: uniqueEmail(), password: 'long-enough-pw', role: 'viewer', grants: ['documents:read', 'documents:sahre'] }, path: '/grants/1' },
    { method: 'PATCH' as const, url: `/users/${user.id}`, payload: { revokes: ['nope'] }, path: '/revokes/0' },
    { method: 'PATCH' as const, url: `/users/${user.id}`, payload: { grants: [42] }, path: '/grants/0' },
  ]
  for (const c of cases) {
    const res = await app.inject({ method: c.method, url: c.url, headers: admin.headers, payload: c.payload })
    assertErrorShape(t, res, 400, 'validation_failed')
    const body = res.json()
    t.equal(body.details.length, 1, `${c.method} ${c.path}: one detail, not one per permission`)
    t.equal(body.details[0].path, c.path)
    for (const p of PERMISSIONS) t.ok(body.message.includes(p), `the message lists ${p}`)
    t.equal(body.message.split('documents:read').length, 2, 'each name once')
  }
  const typo = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { grants: ['documents:sahre'] } })
  t.match(typo.json().message, /"documents:sahre" is not allowed; use one of: documents:read, /, 'echoes the typo')
  const role = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { role: 'boss' } })
  t.equal(role.json().message, 'Invalid body: /role "boss" is not allowed; use one of: viewer, editor, admin')
  const missing = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { password: 'long-enough-pw', role: 'viewer' } })
  t.same(missing.json().details, [{ path: '/email', message: 'is required' }])
})

t.test('403 forbidden names the permission that is missing', async (t) => {
  const app = await build(t)
  const viewer = await createUser(app, 'viewer')
  const editor = await createUser(app, 'editor')
  const res = await app.inject({ method: 'GET', url: '/users', headers: editor.headers })
  assertErrorShape(t, res, 403, 'forbidden')
  t.match(res.json().message, /^This requires the users:manage permission\b/)
  const audit = await app.inject({ method: 'GET', url: '/audit-events', headers: editor.headers })
  t.match(audit.json().message, /requires the audit:read permission/)
  const create = await upload(app, viewer.headers, { filename: 'a.txt', data: 'x' })
  assertErrorShape(t, create, 403, 'forbidden')
  t.match(create.json().message, /requires the documents:create permission/)

  // object-level refusals name what would be needed
  const noShare = await createUser(app, 'editor', { revokes: ['documents:share'] })
  const doc = (await upload(app, noShare.headers, { filename: 'b.txt', data: 'y' })).json()
  const vis = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: noShare.headers, payload: { visibility: 'internal' } })
  assertErrorShape(t, vis, 403, 'forbidden')
  t.match(vis.json().message, /documents:share.*documents:manage/)
  const share = await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${viewer.id}`, headers: noShare.headers, payload: { access: 'read' } })
  assertErrorShape(t, share, 403, 'forbidden')
  t.match(share.json().message, /requires the documents:share permission/)
  const internal = await upload(app, noShare.headers, { filename: 'c.txt', data: 'z' }, [['visibility', 'internal']])
  assertErrorShape(t, internal, 403, 'forbidden')
  t.match(internal.json().message, /requires the documents:share permission/)
})
