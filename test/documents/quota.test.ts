// issue 24, storage quotas: every upload path reserves before storing a byte (one conditional
// UPDATE, so concurrent uploads cannot jointly overshoot), settles to the real size with the row,
// releases on failure, cancel and expiry; purge and version pruning give bytes back, trash does not.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { and, eq, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { auditEvents, documents, documentVersions, quotaReservations, quotaSharedHolds, uploads, users } from '../../drizzle/schema/index.js'
import type { Config } from '../../src/config.js'
import { assertErrorShape, createUser, privateDatabase, type TestUser } from '../helper.js'
import { addVersion, buildWith, objects, upload } from './helpers.js'
import sweep from '../../src/jobs/uploads-sweep.js'

interface Ticket { uploadId: string, url: string, headers: Record<string, string>, expiresAt: string }
interface Setup { app: FastifyInstance, port: number }

// A database of this file's own: the uploads sweep it runs with a clock days ahead would release
// every reservation and delete every pending upload of the files running beside it.
const DATABASE_URL = await privateDatabase('quota', t)

async function setup (t: Test, overrides: Partial<Config> = {}): Promise<Setup> {
  const app = await buildWith(t, 'local', { DATABASE_URL, ...overrides })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

const usage = async (app: FastifyInstance, id: string) => {
  const [u] = await app.db.select({ used: users.usedBytes, reserved: users.reservedBytes }).from(users).where(eq(users.id, id))
  const held = await app.db.select().from(quotaReservations).where(eq(quotaReservations.userId, id))
  return { used: u?.used, reserved: u?.reserved, reservations: held.length }
}
const me = async (app: FastifyInstance, u: TestUser) => (await app.inject({ url: '/auth/me', headers: u.headers })).json()
const file = (n: number) => ({ filename: 'f.bin', data: randomBytes(n) })
const start = async (app: FastifyInstance, u: TestUser, size: number, documentId?: string) => await app.inject({
  method: 'POST', url: documentId === undefined ? '/uploads' : `/documents/${documentId}/versions/uploads`, headers: u.headers, payload: { filename: 'p.bin', mimeType: 'application/octet-stream', size },
})
async function put (s: Setup, ticket: Ticket, body: Buffer): Promise<number> {
  const url = ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${s.port}`)
  return (await fetch(url, { method: 'PUT', headers: ticket.headers, body })).status
}
const complete = async (app: FastifyInstance, u: TestUser, id: string) => await app.inject({ method: 'POST', url: `/uploads/${id}/complete`, headers: u.headers, payload: {} })

t.test('two concurrent multipart uploads that together exceed the quota: one is stored, the other 413; usage exact', async (t) => {
  const { app } = await setup(t, { QUOTA_DEFAULT_BYTES: 3000 })
  const ed = await createUser(app, 'editor')
  const before = await objects(app)
  const results = await Promise.all([upload(app, ed.headers, file(2000)), upload(app, ed.headers, file(2000))])
  t.same(results.map(r => r.statusCode).sort(), [201, 413], results.map(r => r.body).join(' | '))
  const refused = results.find(r => r.statusCode === 413)!
  assertErrorShape(t, refused, 413, 'quota_exceeded')
  t.match(refused.json().message, /quota/)
  t.same(await usage(app, ed.id), { used: 2000, reserved: 0, reservations: 0 }, 'exactly the stored file counts')
  t.match(await me(app, ed), { id: ed.id, usedBytes: 2000, reservedBytes: 0, quotaBytes: 3000 }, 'GET /auth/me shows the numbers')
  t.equal((await objects(app)).length, before.length + 1, 'one object stored')
})

t.test('two concurrent pre-signed uploads: one ticket, one 413; complete settles, cancel, failure and expiry release', async (t) => {
  const s = await setup(t, { QUOTA_DEFAULT_BYTES: 3000 })
  const { app } = s
  const ed = await createUser(app, 'editor')
  const results = await Promise.all([start(app, ed, 2000), start(app, ed, 2000)])
  t.same(results.map(r => r.statusCode).sort(), [201, 413], results.map(r => r.body).join(' | '))
  assertErrorShape(t, results.find(r => r.statusCode === 413)!, 413, 'quota_exceeded')
  t.equal((await app.db.select().from(uploads).where(eq(uploads.userId, ed.id))).length, 1, 'no upload row for the refused one')
  t.same(await usage(app, ed.id), { used: 0, reserved: 2000, reservations: 1 }, 'the declared size is held')

  const ticket = results.find(r => r.statusCode === 201)!.json() as Ticket
  t.equal(await put(s, ticket, randomBytes(2000)), 200)
  const done = await complete(app, ed, ticket.uploadId)
  t.equal(done.statusCode, 201, done.body)
  t.same(await usage(app, ed.id), { used: 2000, reserved: 0, reservations: 0 }, 'settled to the real size')

  // 1000 bytes left: 1001 do not fit, 1000 do.
  assertErrorShape(t, await start(app, ed, 1001), 413, 'quota_exceeded')
  const cancelled = (await start(app, ed, 1000)).json() as Ticket
  t.equal((await usage(app, ed.id)).reserved, 1000)
  t.equal((await app.inject({ method: 'DELETE', url: `/uploads/${cancelled.uploadId}`, headers: ed.headers })).statusCode, 204)
  t.same(await usage(app, ed.id), { used: 2000, reserved: 0, reservations: 0 }, 'cancel releases')

  const wrong = (await start(app, ed, 600)).json() as Ticket
  const { 'content-length': _drop, ...headers } = wrong.headers
  t.equal(await put(s, { ...wrong, headers }, randomBytes(300)), 200)
  assertErrorShape(t, await complete(app, ed, wrong.uploadId), 400, 'size_mismatch')
  t.same(await usage(app, ed.id), { used: 2000, reserved: 0, reservations: 0 }, 'a failed complete releases')

  const abandoned = (await start(app, ed, 700)).json() as Ticket
  t.equal((await usage(app, ed.id)).reserved, 700)
  await sweep.process(app, { data: { now: new Date(Date.parse(abandoned.expiresAt) + 3600_000).toISOString() } } as never)
  t.same(await usage(app, ed.id), { used: 2000, reserved: 0, reservations: 0 }, 'the uploads sweep releases an expired upload')

  // A reservation whose process died (no upload row): released after its own expiry.
  const orphan = await app.quota.reserve(ed.id, 500, { heldBy: ed.id })
  t.equal((await usage(app, ed.id)).reserved, 500)
  await sweep.process(app, { data: { now: new Date(Date.now() + 2 * 24 * 3600_000).toISOString() } } as never)
  t.same(await usage(app, ed.id), { used: 2000, reserved: 0, reservations: 0 }, 'the sweep releases expired reservations')
  t.equal(await app.quota.release(orphan), false, 'release is idempotent')
})

t.test('every upload path is refused with 413 before any byte is stored; a version counts against the owner', async (t) => {
  const s = await setup(t, { QUOTA_DEFAULT_BYTES: 2000 })
  const { app } = s
  const owner = await createUser(app, 'editor')
  const first = await upload(app, owner.headers, file(1500))
  t.equal(first.statusCode, 201, first.body)
  const id = first.json().id as string
  t.same(await usage(app, owner.id), { used: 1500, reserved: 0, reservations: 0 })
  const stored = await objects(app)
  const rows = async () => ({
    documents: (await app.db.select({ n: sql<number>`count(*)` }).from(documents).where(eq(documents.ownerId, owner.id)))[0]?.n,
    versions: (await app.db.select({ n: sql<number>`count(*)` }).from(documentVersions).where(eq(documentVersions.documentId, id)))[0]?.n,
    uploads: (await app.db.select({ n: sql<number>`count(*)` }).from(uploads).where(eq(uploads.userId, owner.id)))[0]?.n,
  })
  const before = await rows()

  assertErrorShape(t, await upload(app, owner.headers, file(600)), 413, 'quota_exceeded')
  assertErrorShape(t, await start(app, owner, 600), 413, 'quota_exceeded')
  assertErrorShape(t, await addVersion(app, owner, id, randomBytes(600)), 413, 'quota_exceeded')
  assertErrorShape(t, await start(app, owner, 600, id), 413, 'quota_exceeded')
  // A writer who is not the owner uploads into the owner's budget.
  const writer = await createUser(app, 'editor', { grants: ['documents:share'] })
  t.equal((await app.inject({ method: 'PUT', url: `/documents/${id}/shares/${writer.id}`, headers: owner.headers, payload: { access: 'write' } })).statusCode < 300, true)
  assertErrorShape(t, await addVersion(app, writer, id, randomBytes(600)), 413, 'quota_exceeded')
  assertErrorShape(t, await start(app, writer, 600, id), 413, 'quota_exceeded')

  t.same(await objects(app), stored, 'no object was stored')
  t.same(await rows(), before, 'no document, version or upload row')
  t.same(await usage(app, owner.id), { used: 1500, reserved: 0, reservations: 0 }, 'nothing held')

  // What fits goes through, charged to the owner, not to the writer.
  const v = await addVersion(app, writer, id, randomBytes(300))
  t.equal(v.statusCode, 201, v.body)
  t.equal((await usage(app, owner.id)).used, 1800)
  t.equal((await usage(app, writer.id)).used, 0)
  // Restoring version 1 would store 1500 more bytes: refused too.
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${id}/versions/1/restore`, headers: owner.headers }), 413, 'quota_exceeded')
  t.same(await usage(app, owner.id), { used: 1800, reserved: 0, reservations: 0 })
})

// A user with a write share reserves against the owner's quota; QUOTA_SHARED_RESERVE_MAX_BYTES caps
// what one such user holds there in unfinished uploads, so they cannot tie the owner's quota up.
t.test('a writer who is not the owner holds at most QUOTA_SHARED_RESERVE_MAX_BYTES of the owner\'s quota; the owner is not capped', async (t) => {
  const s = await setup(t, { QUOTA_DEFAULT_BYTES: 20_000, QUOTA_SHARED_RESERVE_MAX_BYTES: 3000 })
  const { app } = s
  const owner = await createUser(app, 'editor')
  const writer = await createUser(app, 'editor')
  const created = await upload(app, owner.headers, file(1000))
  t.equal(created.statusCode, 201, created.body)
  const id = created.json().id as string
  t.ok((await app.inject({ method: 'PUT', url: `/documents/${id}/shares/${writer.id}`, headers: owner.headers, payload: { access: 'write' } })).statusCode < 300)
  const hold = async (by: string) => (await app.db.select({ bytes: quotaSharedHolds.bytes }).from(quotaSharedHolds)
    .where(and(eq(quotaSharedHolds.userId, owner.id), eq(quotaSharedHolds.heldBy, by))))[0]?.bytes ?? null
  const tus = async (u: TestUser, size: number, documentId: string) => await app.inject({
    method: 'POST', url: '/uploads/tus', headers: { ...u.headers, 'tus-resumable': '1.0.0', 'upload-length': String(size), 'upload-metadata': `documentId ${Buffer.from(documentId).toString('base64')}` },
  })

  // 1500 held; then 2000 and 1500 at once: 2000 never fits beside 1500 + 1500, so whichever
  // runs first, exactly the 1500 one passes and 3000 are held.
  const first = await start(app, writer, 1500, id)
  t.equal(first.statusCode, 201, first.body)
  const both = await Promise.all([start(app, writer, 2000, id), start(app, writer, 1500, id.toUpperCase())])
  t.same(both.map(r => r.statusCode), [413, 201], both.map(r => r.body).join(' | '))
  const refused = both[0]!
  assertErrorShape(t, refused, 413, 'shared_upload_limit')
  t.match(refused.json().message, /needs 2000 bytes .* hold (1500|3000) bytes .* at most 3000 .*QUOTA_SHARED_RESERVE_MAX_BYTES/)
  t.same(await usage(app, owner.id), { used: 1000, reserved: 3000, reservations: 2 }, 'only the two that passed are held')
  t.equal(await hold(writer.id), 3000)
  t.equal((await app.db.select().from(uploads).where(eq(uploads.userId, writer.id))).length, 2, 'no upload row for the refused one')

  // Every other path of the writer's is refused too, before a byte is stored; the quota itself has room.
  const stored = await objects(app)
  assertErrorShape(t, await addVersion(app, writer, id, randomBytes(100)), 413, 'shared_upload_limit')
  assertErrorShape(t, await tus(writer, 100, id.toUpperCase()), 413, 'shared_upload_limit')
  assertErrorShape(t, await start(app, writer, 1, id.toUpperCase()), 413, 'shared_upload_limit')
  t.same(await objects(app), stored, 'nothing stored')
  t.same(await usage(app, owner.id), { used: 1000, reserved: 3000, reservations: 2 })

  // The owner is not capped: two uploads of their own above the cap, and a version.
  const own = await Promise.all([start(app, owner, 4000), start(app, owner, 4000, id)])
  t.same(own.map(r => r.statusCode), [201, 201], own.map(r => r.body).join(' | '))
  const ownVersion = await addVersion(app, owner, id, randomBytes(3500))
  t.equal(ownVersion.statusCode, 201, ownVersion.body)
  t.same(await usage(app, owner.id), { used: 4500, reserved: 11_000, reservations: 4 })
  // Restoring version 1 (1000 bytes, now an old one) would be a copy held by the writer: over the cap too.
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${id.toUpperCase()}/versions/1/restore`, headers: writer.headers }), 413, 'shared_upload_limit')
  for (const r of own) t.equal((await app.inject({ method: 'DELETE', url: `/uploads/${(r.json() as Ticket).uploadId}`, headers: owner.headers })).statusCode, 204)
  t.equal(await hold(owner.id), null, 'an owner\'s own uploads hold nothing of the kind')

  // Cancel releases the writer's hold; then a tus upload (with an upper-case id) fits, and its termination releases it.
  const [a, b] = [first.json() as Ticket, both[1]!.json() as Ticket]
  t.equal((await app.inject({ method: 'DELETE', url: `/uploads/${a.uploadId}`, headers: writer.headers })).statusCode, 204)
  t.equal(await hold(writer.id), 1500)
  t.same(await usage(app, owner.id), { used: 4500, reserved: 1500, reservations: 1 })
  const viaTus = await tus(writer, 1500, id.toUpperCase())
  t.equal(viaTus.statusCode, 201, viaTus.body)
  t.equal(await hold(writer.id), 3000)
  t.equal((await app.inject({ method: 'DELETE', url: viaTus.headers.location as string, headers: { ...writer.headers, 'tus-resumable': '1.0.0' } })).statusCode, 204)
  t.equal(await hold(writer.id), 1500, 'tus termination releases')

  // Complete settles the other one: charged to the owner, nothing held any more.
  t.equal(await put(s, b, randomBytes(1500)), 200)
  const done = await complete(app, writer, b.uploadId)
  t.equal(done.statusCode, 201, done.body)
  t.same(await usage(app, owner.id), { used: 6000, reserved: 0, reservations: 0 }, 'usage exact after the grantee\'s uploads')
  t.equal(await hold(writer.id), null, 'the hold row goes at 0')
  t.equal((await usage(app, writer.id)).used, 0)

  // The writer's multipart version (held only while it streams) fits again; an abandoned
  // upload is released by the sweep, hold included.
  const v = await addVersion(app, writer, id, randomBytes(800))
  t.equal(v.statusCode, 201, v.body)
  const abandoned = (await start(app, writer, 2500, id)).json() as Ticket
  t.equal(await hold(writer.id), 2500)
  await sweep.process(app, { data: { now: new Date(Date.parse(abandoned.expiresAt) + 3600_000).toISOString() } } as never)
  t.equal(await hold(writer.id), null, 'the sweep releases an expired upload\'s hold')
  t.same(await usage(app, owner.id), { used: 6800, reserved: 0, reservations: 0 })

  // Eight reservations of 1000 at once against the 3000 cap: exactly three pass, the others are refused (no deadlock, no overshoot).
  const many = await Promise.allSettled(Array.from({ length: 8 }, async () => await app.quota.reserve(owner.id, 1000, { heldBy: writer.id })))
  const passed = many.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  t.equal(passed.length, 3)
  t.same(many.flatMap(r => r.status === 'rejected' ? [(r.reason as { code?: string }).code] : []), Array(5).fill('shared_upload_limit'))
  t.equal(await hold(writer.id), 3000)
  for (const r of passed) t.equal(await app.quota.release(r), true)
  t.equal(await hold(writer.id), null)

  // An owner without a quota has nothing to tie up: no cap.
  await app.db.update(users).set({ quotaBytes: 0 }).where(eq(users.id, owner.id))
  const free = await Promise.all([start(app, writer, 2500, id), start(app, writer, 2500, id)])
  t.same(free.map(r => r.statusCode), [201, 201], free.map(r => r.body).join(' | '))
  for (const r of free) t.equal((await app.inject({ method: 'DELETE', url: `/uploads/${(r.json() as Ticket).uploadId}`, headers: writer.headers })).statusCode, 204)
  t.same(await usage(app, owner.id), { used: 6800, reserved: 0, reservations: 0 })
  t.equal(await hold(writer.id), null)
})

t.test('trash keeps counting; purge and version pruning give the bytes back; same bytes add nothing', async (t) => {
  const { app } = await setup(t, { QUOTA_DEFAULT_BYTES: 10_000, VERSIONS_KEEP: 1 })
  const ed = await createUser(app, 'editor')
  const up = await upload(app, ed.headers, file(1000))
  const id = up.json().id as string
  const v2 = randomBytes(1500)
  t.equal((await addVersion(app, ed, id, v2)).statusCode, 201)
  t.equal((await usage(app, ed.id)).used, 2500, 'every version counts')
  t.equal((await addVersion(app, ed, id, v2)).statusCode, 200, 'the current bytes again: nothing stored')
  t.same(await usage(app, ed.id), { used: 2500, reserved: 0, reservations: 0 })

  t.same(await app.versionService.prune(id), [1], 'version 1 pruned (VERSIONS_KEEP=1)')
  t.equal((await usage(app, ed.id)).used, 1500, 'pruning gives its bytes back')

  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204)
  t.equal((await usage(app, ed.id)).used, 1500, 'the trash does not')
  t.equal((await me(app, ed)).usedBytes, 1500)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: ed.headers })).statusCode, 204)
  t.same(await usage(app, ed.id), { used: 0, reserved: 0, reservations: 0 }, 'the purge does')
})

t.test('admins set a user\'s quota with PATCH /users/:id; bad values are 400; users cannot set their own', async (t) => {
  const { app } = await setup(t, { QUOTA_DEFAULT_BYTES: 5000 })
  const admin = await createUser(app, 'admin')
  const ed = await createUser(app, 'editor')
  const patch = async (by: TestUser, id: string, body: unknown) => await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: by.headers, payload: body as Record<string, unknown> })

  t.match(await me(app, ed), { usedBytes: 0, reservedBytes: 0, quotaBytes: 5000 }, 'the default applies')
  t.match((await app.inject({ url: `/users/${ed.id}`, headers: admin.headers })).json(), { quotaBytes: null, usedBytes: 0 })
  const set = await patch(admin, ed.id.toUpperCase(), { quotaBytes: 1200 })
  t.equal(set.statusCode, 200, set.body)
  t.match(set.json(), { id: ed.id, quotaBytes: 1200, usedBytes: 0 })
  t.equal((await me(app, ed)).quotaBytes, 1200)
  const [audit] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'user.update'), eq(auditEvents.subject, `user:${ed.id}`)))
  t.match(audit?.payload, { changed: { quotaBytes: 1200 } }, 'audited')
  assertErrorShape(t, await upload(app, ed.headers, file(1500)), 413, 'quota_exceeded')

  t.equal((await patch(admin, ed.id, { quotaBytes: 0 })).json().quotaBytes, 0)
  t.equal((await me(app, ed)).quotaBytes, 0, '0 = unlimited')
  t.equal((await upload(app, ed.headers, file(6000))).statusCode, 201, 'over the default: unlimited for this user')
  t.equal((await patch(admin, ed.id, { quotaBytes: null })).json().quotaBytes, null)
  t.match(await me(app, ed), { quotaBytes: 5000, usedBytes: 6000 }, 'back to the default; lowering deletes nothing')
  assertErrorShape(t, await upload(app, ed.headers, file(10)), 413, 'quota_exceeded')

  for (const bad of [-1, 1.5, 2 ** 60, 'lots', true, { n: 1 }, [1]]) {
    assertErrorShape(t, await patch(admin, ed.id, { quotaBytes: bad }), 400, 'validation_failed')
  }
  assertErrorShape(t, await patch(ed, ed.id, { quotaBytes: 10 ** 12 }), 403, 'forbidden')
  assertErrorShape(t, await patch(admin, '0190f0f0-0000-7000-8000-000000000000', { quotaBytes: 1 }), 404, 'not_found')
  t.equal((await me(app, ed)).quotaBytes, 5000, 'unchanged by the refused requests')
})

t.test('migration 0013 backfills usage from the versions of the documents a user owns', async (t) => {
  const { app } = await setup(t)
  const ed = await createUser(app, 'editor')
  const id = (await upload(app, ed.headers, file(700))).json().id as string
  t.equal((await addVersion(app, ed, id, randomBytes(900))).statusCode, 201)
  t.equal((await usage(app, ed.id)).used, 1600)
  await app.db.update(users).set({ usedBytes: 0 }).where(eq(users.id, ed.id))
  const text = readFileSync(new URL('../../drizzle/migrations/0013_quotas.sql', import.meta.url), 'utf8')
  const backfill = text.split('--> statement-breakpoint').map(s => s.trim()).find(s => s.startsWith('UPDATE `users`'))
  t.ok(backfill, 'the migration has the backfill')
  // Only this user's row: other test files may run against the same database.
  await app.db.$client.query(`${backfill!.replace(/;$/, '')} WHERE u.\`id\` = ?`, [ed.id])
  t.equal((await usage(app, ed.id)).used, 1600, 'recomputed from the stored versions')
})
