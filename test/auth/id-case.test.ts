import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { documents, ingestions } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser } from '../helper.js'
import { createDocument, randomKey } from '../ingestion/helpers.js'

// MySQL used to compare ids without regard to letter case while JS and Redis compare exactly:
// an id sent in upper case must mean the same row to every comparison (issue 18).
const up = (id: string): string => id.toUpperCase()

test('DELETE /auth/sessions/:id in upper case really ends the session', async (t) => {
  const app = await build(t)
  const u = await createUser(app, 'viewer')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } })
  t.equal(login.statusCode, 200)
  const other = { authorization: `Bearer ${login.json().accessToken as string}` }
  const sessions = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: u.headers })).json() as Array<{ id: string, current: boolean }>
  const target = sessions.find(s => !s.current)
  t.ok(target)
  const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${up(target!.id)}`, headers: u.headers })
  t.equal(res.statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: other }), 401)
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: login.json().refreshToken } })
  assertErrorShape(t, refresh, 401)
  const left = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: u.headers })).json() as Array<{ id: string }>
  t.notOk(left.some(s => s.id === target!.id), 'no longer listed')
  // the answer for a session that is not the caller's stays 404, whatever the case
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${up(target!.id)}`, headers: u.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: '/auth/sessions/not-an-id', headers: u.headers }), 404, 'not_found')
})

test('DELETE /users/:id?transferTo= in upper case: to the deleted user itself is refused, to an heir works', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const leaving = await createUser(app, 'editor')
  const doc = await createDocument(app, leaving.id)
  // the user being deleted, named in upper case: must be refused, not leave documents to nobody
  const self = await app.inject({ method: 'DELETE', url: `/users/${leaving.id}?transferTo=${up(leaving.id)}`, headers: admin.headers })
  assertErrorShape(t, self, 400, 'invalid_transfer_target')
  t.equal((await app.inject({ method: 'GET', url: `/users/${leaving.id}`, headers: admin.headers })).statusCode, 200, 'user still there')

  const heir = await createUser(app, 'editor')
  const res = await app.inject({ method: 'DELETE', url: `/users/${up(leaving.id)}?transferTo=${up(heir.id)}`, headers: admin.headers })
  t.equal(res.statusCode, 204)
  const [row] = await app.db.select({ ownerId: documents.ownerId }).from(documents).where(eq(documents.id, doc.id))
  t.equal(row?.ownerId, heir.id, 'stored owner id is the canonical one')
  const read = await app.inject({ method: 'GET', url: `/documents/${doc.id}`, headers: heir.headers })
  t.equal(read.statusCode, 200, 'the heir can open the document')
  t.equal(read.json().ownerId, heir.id)
  const mine = await app.inject({ method: 'GET', url: `/documents?ownerId=${up(heir.id)}`, headers: heir.headers })
  t.same(mine.json().items.map((d: { id: string }) => d.id), [doc.id], 'ownerId filter in upper case')
  // the audit log filter by actor accepts the id in either case
  const audit = await app.inject({ method: 'GET', url: `/audit-events?actorId=${up(admin.id)}&action=user.delete`, headers: admin.headers })
  t.equal(audit.statusCode, 200)
  t.ok(audit.json().items.length >= 1, 'audit actorId filter in upper case')
})

test('an owner cannot share with themselves through an upper-case id', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const doc = await createDocument(app, owner.id)
  const res = await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${up(owner.id)}`, headers: owner.headers, payload: { access: 'read' } })
  assertErrorShape(t, res, 400, 'validation_failed')
  // a share to someone else given in upper case is stored and answered in the canonical form
  const other = await createUser(app, 'viewer')
  const ok = await app.inject({ method: 'PUT', url: `/documents/${up(doc.id)}/shares/${up(other.id)}`, headers: owner.headers, payload: { access: 'read' } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().userId, other.id)
  t.equal((await app.inject({ method: 'GET', url: `/documents/${doc.id}`, headers: other.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}/shares/${up(other.id)}`, headers: owner.headers })).statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/documents/${doc.id}`, headers: other.headers }), 404)
})

test('ingestions triggered through upper-case document ids store the canonical id', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  const one = await app.inject({ method: 'POST', url: `/documents/${up(doc.id)}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(one.statusCode, 202)
  t.equal(one.json().documentId, doc.id)
  const [row] = await app.db.select({ documentId: ingestions.documentId }).from(ingestions).where(eq(ingestions.id, one.json().id))
  t.equal(row?.documentId, doc.id)
  const listed = await app.inject({ method: 'GET', url: `/ingestions?documentId=${up(doc.id)}`, headers: ed.headers })
  t.same(listed.json().items.map((i: { id: string }) => i.id), [one.json().id], 'documentId filter in upper case')
  // the same document twice in a bulk request, in two letter cases: one document, refused as a duplicate
  const bulk = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: [doc.id, up(doc.id)] } })
  assertErrorShape(t, bulk, 400, 'validation_failed')
  // an idempotent retry naming the document in another case is the same request, not a reused key
  const key = randomKey()
  const a = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  const b = await app.inject({ method: 'POST', url: `/documents/${up(doc.id)}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  t.equal(a.statusCode, 202)
  t.equal(b.statusCode, 202)
  t.equal(b.json().id, a.json().id)
})

test('ids that are not ASCII are a miss (404, empty list, 400 for transferTo), never a database error', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const odd = encodeURIComponent('é😀')
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/documents/${odd}`, headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/users/${odd}`, headers: admin.headers }), 404, 'not_found')
  for (const url of [`/documents?ownerId=${odd}`, `/audit-events?actorId=${odd}`, `/ingestions?documentId=${odd}`]) {
    const res = await app.inject({ method: 'GET', url, headers: admin.headers })
    t.equal(res.statusCode, 200, url)
    t.same(res.json().items, [], url)
  }
  const victim = await createUser(app, 'viewer')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${victim.id}?transferTo=${odd}`, headers: admin.headers }), 400, 'invalid_transfer_target')
})
