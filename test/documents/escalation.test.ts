import t from 'tap'
import { assertErrorShape, createUser } from '../helper.js'
import { buildWith, upload } from './helpers.js'

// Issue 18: a write share lets a collaborator change the document, never who may read it.

t.test('a write-share collaborator cannot change visibility; share holders can', async (t) => {
  const app = await buildWith(t, 'local')
  const owner = await createUser(app, 'editor')
  const collab = await createUser(app, 'editor')
  const outsider = await createUser(app, 'viewer')
  const admin = await createUser(app, 'admin')
  const doc = (await upload(app, owner.headers, { filename: 'p.txt', data: 'private text' })).json()
  t.equal(doc.visibility, 'private')
  t.equal((await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${collab.id}`, headers: owner.headers, payload: { access: 'write' } })).statusCode, 200)

  // the escalation: refused, and nothing changed (not even the other fields of the same PATCH)
  const esc = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: collab.headers, payload: { visibility: 'internal', title: 'pwned' } })
  assertErrorShape(t, esc, 403, 'forbidden')
  const after = (await app.inject({ url: `/documents/${doc.id}`, headers: owner.headers })).json()
  t.match(after, { visibility: 'private', title: doc.title, version: doc.version })
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}`, headers: outsider.headers }), 404, 'not_found')

  // same value again: a no-op for visibility, the writer's other changes go through
  const same = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: collab.headers, payload: { visibility: 'private', title: 'renamed' } })
  t.equal(same.statusCode, 200)
  t.match(same.json(), { visibility: 'private', title: 'renamed' })
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: collab.headers, payload: { tags: ['x'] } })).statusCode, 200)

  // the share routes stay the owner's (and a manager's): no other way to widen access
  assertErrorShape(t, await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${outsider.id}`, headers: collab.headers, payload: { access: 'read' } }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: collab.headers, payload: { ownerId: collab.id } }), 400, 'validation_failed')

  // the owner and a manager may
  const pub = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: owner.headers, payload: { visibility: 'internal' } })
  t.equal(pub.statusCode, 200)
  t.equal(pub.json().visibility, 'internal')
  t.equal((await app.inject({ url: `/documents/${doc.id}`, headers: outsider.headers })).statusCode, 200)
  // ... and the collaborator cannot narrow it either (visibility is the sharer's call both ways)
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: collab.headers, payload: { visibility: 'private' } }), 403, 'forbidden')
  const back = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: admin.headers, payload: { visibility: 'private' } })
  t.equal(back.statusCode, 200)
  t.equal(back.json().visibility, 'private')
})

t.test('an owner without documents:share cannot publish, on PATCH or at creation', async (t) => {
  const app = await buildWith(t, 'local')
  const owner = await createUser(app, 'editor', { revokes: ['documents:share'] })
  const doc = (await upload(app, owner.headers, { filename: 'q.txt', data: 'mine' })).json()
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: owner.headers, payload: { visibility: 'internal' } }), 403, 'forbidden')
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: owner.headers, payload: { visibility: 'private', title: 'ok' } })).statusCode, 200)
  assertErrorShape(t, await upload(app, owner.headers, { filename: 'r.txt', data: 'mine too' }, [['visibility', 'internal']]), 403, 'forbidden')
  const asPrivate = await upload(app, owner.headers, { filename: 'r.txt', data: 'mine too' }, [['visibility', 'private']])
  t.equal(asPrivate.statusCode, 201)
})

t.test('GET /documents/:id/shares pages like every list: ?limit&cursor -> {items, nextCursor}', async (t) => {
  const app = await buildWith(t, 'local')
  const owner = await createUser(app, 'editor')
  const friends = await Promise.all(Array.from({ length: 5 }, async () => await createUser(app, 'viewer')))
  const doc = (await upload(app, owner.headers, { filename: 'many.txt', data: 'shared widely' })).json()
  for (const f of friends) {
    t.equal((await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${f.id}`, headers: owner.headers, payload: { access: 'read' } })).statusCode, 200)
  }
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await app.inject({ url: `/documents/${doc.id}/shares?limit=2${cursor !== null ? `&cursor=${cursor}` : ''}`, headers: owner.headers })
    t.equal(res.statusCode, 200)
    const body = res.json() as { items: Array<{ userId: string, access: string, createdAt: string }>, nextCursor: string | null }
    t.same(Object.keys(body).sort(), ['items', 'nextCursor'])
    t.ok(body.items.length <= 2)
    seen.push(...body.items.map(i => i.userId))
    cursor = body.nextCursor
    pages++
  } while (cursor !== null && pages < 10)
  t.equal(pages, 3, '5 shares, 2 per page')
  t.same(seen, friends.map(f => f.id).sort(), 'every share once, by user id')
  // default page and the bounds every list has
  const all = (await app.inject({ url: `/documents/${doc.id}/shares`, headers: owner.headers })).json()
  t.equal(all.items.length, 5)
  t.equal(all.nextCursor, null)
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}/shares?cursor=garbage!`, headers: owner.headers }), 400, 'invalid_cursor')
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}/shares?limit=0`, headers: owner.headers }), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}/shares?limit=101`, headers: owner.headers }), 400, 'validation_failed')
  // still the sharer's list only
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}/shares`, headers: friends[0]!.headers }), 403, 'forbidden')
})
