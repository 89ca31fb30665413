import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Job } from 'bullmq'
import { eq, inArray } from 'drizzle-orm'
import { auditEvents, documents, documentShares } from '../../drizzle/schema/index.js'
import { newId } from '../../src/lib/ids.js'
import auditPurge from '../../src/jobs/audit-purge.js'
import { assertErrorShape, build, createUser, uniqueEmail } from '../helper.js'

async function insertDocument (app: FastifyInstance, ownerId: string): Promise<string> {
  const id = newId()
  const now = new Date()
  await app.db.insert(documents).values({
    id,
    ownerId,
    title: 't',
    filename: 'f.txt',
    mimeType: 'text/plain',
    size: 1,
    sha256: '0'.repeat(64),
    status: 'ready',
    visibility: 'private',
    tags: [],
    storageKey: `test/${id}`,
    metadata: {},
    createdAt: now,
    updatedAt: now,
  })
  return id
}

test('admin routes: anonymous 401, viewer and editor 403, grants and revokes respected', async (t) => {
  const app = await build(t)
  const viewer = await createUser(app, 'viewer')
  const editor = await createUser(app, 'editor')
  const granted = await createUser(app, 'editor', { grants: ['users:manage'] })
  const limitedAdmin = await createUser(app, 'admin', { revokes: ['audit:read'] })
  const id = viewer.id
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/users'], ['POST', '/users', { email: uniqueEmail(), password: 'long enough', role: 'viewer' }], ['GET', `/users/${id}`],
    ['PATCH', `/users/${id}`, { name: 'x' }], ['DELETE', `/users/${id}`], ['GET', '/audit-events'],
  ]
  for (const [method, url, payload] of routes) {
    const opts = { method: method as 'GET', url, ...(payload !== undefined ? { payload: payload as object } : {}) }
    assertErrorShape(t, await app.inject(opts), 401, 'unauthorized')
    assertErrorShape(t, await app.inject({ ...opts, headers: viewer.headers }), 403, 'forbidden')
    assertErrorShape(t, await app.inject({ ...opts, headers: editor.headers }), 403, 'forbidden')
  }
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: granted.headers })).statusCode, 200, 'a grant opens users:manage')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/audit-events', headers: limitedAdmin.headers }), 403, 'forbidden')
  const me = (await app.inject({ method: 'GET', url: '/auth/me', headers: granted.headers })).json()
  t.ok(me.permissions.includes('users:manage'))
})

test('user CRUD, listing, and changes effective on the next request', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const tag = randomBytes(4).toString('hex')
  let res = await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: `New-${tag}@Example.test`, password: 'long enough', name: `Neo ${tag}`, role: 'editor', grants: ['jobs:manage', 'jobs:manage'], revokes: ['documents:share'] } })
  t.equal(res.statusCode, 201)
  const created = res.json()
  t.same(Object.keys(created).sort(), ['createdAt', 'disabled', 'email', 'grants', 'id', 'kind', 'name', 'permissions', 'quotaBytes', 'revokes', 'role', 'updatedAt', 'usedBytes'])
  t.equal(created.email, `new-${tag}@example.test`)
  t.same(created.grants, ['jobs:manage'])
  t.ok(created.permissions.includes('jobs:manage') && !created.permissions.includes('documents:share'))
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: `NEW-${tag}@example.test`, password: 'long enough', role: 'viewer' } }), 409, 'email_taken')

  t.same((await app.inject({ method: 'GET', url: `/users/${created.id as string}`, headers: admin.headers })).json(), created)
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/users/${newId()}`, headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/users/not-an-id', headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/users/${newId()}`, headers: admin.headers, payload: { name: 'x' } }), 404, 'not_found')

  // the created user can log in
  res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: created.email, password: 'long enough' } })
  t.equal(res.statusCode, 200)

  // list: q matches email or name, LIKE wildcards are literal, pagination by cursor
  for (let i = 0; i < 3; i++) await createUser(app, 'viewer', { name: `Page ${tag} ${i}` })
  res = await app.inject({ method: 'GET', url: `/users?q=${tag}&limit=2`, headers: admin.headers })
  const p1 = res.json()
  t.equal(p1.items.length, 2)
  t.type(p1.nextCursor, 'string')
  res = await app.inject({ method: 'GET', url: `/users?q=${tag}&limit=2&cursor=${p1.nextCursor as string}`, headers: admin.headers })
  const p2 = res.json()
  t.equal(p2.items.length, 2)
  t.equal(p2.nextCursor, null, 'last page')
  const all = [...p1.items, ...p2.items].map((u: { id: string }) => u.id)
  t.equal(new Set(all).size, 4, 'no duplicates across pages')
  t.same(all, [...all].sort().reverse(), 'newest first')
  res = await app.inject({ method: 'GET', url: `/users?q=${tag}&role=editor`, headers: admin.headers })
  t.same(res.json().items.map((u: { id: string }) => u.id), [created.id])
  res = await app.inject({ method: 'GET', url: `/users?q=${encodeURIComponent('%_%')}`, headers: admin.headers })
  t.equal(res.json().items.length, 0, 'wildcards escaped')
  t.notOk(/passwordHash|password_hash|\$2b\$/.test(p1.items.map((u: object) => JSON.stringify(u)).join()), 'no hashes')

  // role change: effective on the next request, in both directions
  const editor = await createUser(app, 'editor')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/users', headers: editor.headers }), 403, 'forbidden')
  res = await app.inject({ method: 'PATCH', url: `/users/${editor.id}`, headers: admin.headers, payload: { role: 'admin' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().role, 'admin')
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: editor.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${editor.id}`, headers: admin.headers, payload: { role: 'viewer', name: 'Demoted' } })).statusCode, 200)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/users', headers: editor.headers }), 403, 'forbidden')
  t.same((await app.inject({ method: 'GET', url: '/auth/me', headers: editor.headers })).json().permissions, ['documents:read', 'ingestions:read'])
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${editor.id}`, headers: admin.headers, payload: { grants: ['audit:read'] } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/audit-events', headers: editor.headers })).statusCode, 200, 'grant effective at once')

  // disable: every session dies at once, login refused, re-enable does not revive old tokens
  res = await app.inject({ method: 'PATCH', url: `/users/${editor.id}`, headers: admin.headers, payload: { disabled: true } })
  t.equal(res.json().disabled, true)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: editor.headers }), 401)
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: editor.refreshToken } }), 401)
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/login', payload: { email: editor.email, password: editor.password } }), 401, 'invalid_credentials')
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${editor.id}`, headers: admin.headers, payload: { disabled: false } })).statusCode, 200)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: editor.headers }), 401, 'token_revoked')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: editor.email, password: editor.password } })).statusCode, 200)

  // every admin change is audited with the admin as actor
  res = await app.inject({ method: 'GET', url: `/audit-events?actorId=${admin.id}&action=user.*&limit=100`, headers: admin.headers })
  const events = res.json().items as Array<{ action: string, subject: string, payload: Record<string, unknown> }>
  t.ok(events.some(e => e.action === 'user.create' && e.subject === `user:${created.id as string}`))
  t.equal(events.filter(e => e.action === 'user.update' && e.subject === `user:${editor.id}`).length, 5)
  t.notOk(JSON.stringify(events).includes('long enough'), 'no password in audit payloads')
  res = await app.inject({ method: 'GET', url: `/audit-events?actorId=${admin.id}&limit=2`, headers: admin.headers })
  const next = res.json().nextCursor as string
  const page2 = (await app.inject({ method: 'GET', url: `/audit-events?actorId=${admin.id}&limit=2&cursor=${next}`, headers: admin.headers })).json()
  t.ok(BigInt(page2.items[0].id) < BigInt(res.json().items[1].id), 'audit pages go back in time')
})

test('delete a user: documents transferred or trashed, shares dropped, sessions dead', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const heir = await createUser(app, 'editor')
  const leaver = await createUser(app, 'editor')
  const docs = [await insertDocument(app, leaver.id), await insertDocument(app, leaver.id)]
  const heirDoc = await insertDocument(app, heir.id)
  const now = new Date()
  await app.db.insert(documentShares).values([
    { documentId: heirDoc, userId: leaver.id, access: 'write', createdAt: now },
    { documentId: docs[0] as string, userId: heir.id, access: 'read', createdAt: now },
  ])

  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${leaver.id}?transferTo=${newId()}`, headers: admin.headers }), 400, 'invalid_transfer_target')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${leaver.id}?transferTo=${leaver.id}`, headers: admin.headers }), 400, 'invalid_transfer_target')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: leaver.headers })).statusCode, 200, 'failed deletes changed nothing')

  let res = await app.inject({ method: 'DELETE', url: `/users/${leaver.id}?transferTo=${heir.id}`, headers: admin.headers })
  t.equal(res.statusCode, 204)
  const moved = await app.db.select().from(documents).where(inArray(documents.id, docs))
  t.ok(moved.every(d => d.ownerId === heir.id && d.version === 2 && d.deletedAt === null), 'documents transferred')
  const shares = await app.db.select().from(documentShares).where(inArray(documentShares.documentId, [...docs, heirDoc]))
  t.equal(shares.length, 0, 'shares to the leaver and redundant shares to the heir removed')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: leaver.headers }), 401)
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: leaver.refreshToken } }), 401)
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/users/${leaver.id}`, headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${leaver.id}`, headers: admin.headers }), 404, 'not_found')

  const quitter = await createUser(app, 'editor')
  const qdoc = await insertDocument(app, quitter.id)
  res = await app.inject({ method: 'DELETE', url: `/users/${quitter.id}`, headers: admin.headers })
  t.equal(res.statusCode, 204)
  const [trashed] = await app.db.select().from(documents).where(eq(documents.id, qdoc))
  t.ok(trashed?.deletedAt instanceof Date, 'document trashed')
  t.equal(trashed?.version, 2)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/me', headers: quitter.headers }), 401)

  res = await app.inject({ method: 'GET', url: `/audit-events?action=user.delete&subject=user:${leaver.id}`, headers: admin.headers })
  t.equal(res.json().items[0].payload.documentsTransferred, 2)
})

test('audit retention job deletes only events older than AUDIT_RETENTION_DAYS', async (t) => {
  const app = await build(t, { AUDIT_RETENTION_DAYS: 30 })
  const marker = `test.purge.${randomBytes(4).toString('hex')}`
  const day = 24 * 3600 * 1000
  await app.db.insert(auditEvents).values([
    { at: new Date(Date.now() - 31 * day), action: marker, subject: 'old' },
    { at: new Date(Date.now() - 29 * day), action: marker, subject: 'recent' },
  ])
  const out = await auditPurge.process(app, {} as Job<Record<string, never>>) as { deleted: number }
  t.ok(out.deleted >= 1)
  const left = await app.db.select().from(auditEvents).where(eq(auditEvents.action, marker))
  t.same(left.map(e => e.subject), ['recent'])
})
