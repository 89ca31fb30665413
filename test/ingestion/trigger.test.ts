import { test } from 'tap'
import { and, eq, inArray } from 'drizzle-orm'
import { build, createUser, assertErrorShape, countConnections, TEST_REDIS_URL } from '../helper.js'
import { proxyFor } from '../tcp-proxy.js'
import { auditEvents, documents, ingestionEvents, ingestions } from '../../drizzle/schema/index.js'
import { createDocument, share, randomKey } from './helpers.js'
import { newId } from '../../src/lib/ids.js'

// POST /documents/:id/ingestions checks access inside its insert (one round trip); every refusal
// falls back to the general path. These pin down that both agree and that a refusal writes nothing.

test('single trigger: who may, what is written, and that refusals leave nothing behind', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const writer = await createUser(app, 'editor')
  const reader = await createUser(app, 'editor')
  const stranger = await createUser(app, 'editor')
  const admin = await createUser(app, 'admin')
  const noRead = await createUser(app, 'editor', { revokes: ['documents:read'] })
  const doc = await createDocument(app, owner.id)
  const internal = await createDocument(app, owner.id, { visibility: 'internal' })
  await share(app, doc.id, writer.id, 'write')
  await share(app, doc.id, reader.id, 'read')
  await share(app, doc.id, noRead.id, 'write')

  const rowsOf = async (documentId: string) => await app.db.select().from(ingestions).where(eq(ingestions.documentId, documentId))
  const auditOf = async (id: string) => await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'ingestion.trigger'), eq(auditEvents.subject, `ingestion:${id}`)))

  // allowed: the owner, a write share, documents:manage on someone else's private document
  for (const [who, user] of [['owner', owner], ['write share', writer], ['admin', admin]] as const) {
    const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: { ...user.headers, 'user-agent': `quire-test-${who}` }, payload: { pipeline: 'p1', options: { n: 1 } } })
    t.equal(res.statusCode, 202, `${who} may trigger`)
    const body = res.json()
    t.match(body, { documentId: doc.id, status: 'queued', pipeline: 'p1', options: { n: 1 }, requestedBy: user.id, attempts: 0 })
    t.same(body.events.map((e: { type: string }) => e.type), ['queued'])
    const [row] = await app.db.select().from(ingestions).where(eq(ingestions.id, body.id))
    t.match(row, { documentId: doc.id, status: 'queued', requestedBy: user.id, pipeline: 'p1', options: { n: 1 } }, `${who}: row written as answered`)
    t.ok(row?.enqueuedAt, 'enqueued_at stamped')
    const events = await app.db.select().from(ingestionEvents).where(eq(ingestionEvents.ingestionId, body.id))
    t.same(events.map(e => e.type), ['queued'], 'one queued event')
    const audit = await auditOf(body.id)
    t.equal(audit.length, 1, `${who}: one audit row`)
    t.match(audit[0], { actorId: user.id, payload: { documentId: doc.id, pipeline: 'p1' }, userAgent: `quire-test-${who}` })
    t.ok(await app.queues.ingestion.getJob(body.id), 'its dispatch job exists')
  }
  t.equal((await rowsOf(doc.id)).length, 3)

  // refused: each answers as the general rule says, and writes no row, event or audit entry
  // (this test's own users only: other test files trigger ingestions meanwhile)
  const triggerAudits = async () => await app.db.select().from(auditEvents)
    .where(and(eq(auditEvents.action, 'ingestion.trigger'), inArray(auditEvents.actorId, [owner.id, reader.id, stranger.id, noRead.id])))
  const auditBefore = (await triggerAudits()).length
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: reader.headers, payload: {} }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: stranger.headers, payload: {} }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${internal.id}/ingestions`, headers: stranger.headers, payload: {} }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: noRead.headers, payload: {} }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${newId()}/ingestions`, headers: owner.headers, payload: {} }), 404, 'not_found')

  const notReady = await createDocument(app, owner.id)
  await app.db.update(documents).set({ status: 'uploading' }).where(eq(documents.id, notReady.id))
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${notReady.id}/ingestions`, headers: owner.headers, payload: {} }), 409, 'document_not_ready')
  const trashed = await createDocument(app, owner.id)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${trashed.id}`, headers: owner.headers })).statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${trashed.id}/ingestions`, headers: owner.headers, payload: {} }), 404, 'not_found')

  t.equal((await rowsOf(doc.id)).length, 3, 'no row from the refusals')
  t.same(await rowsOf(internal.id), [])
  t.same(await rowsOf(notReady.id), [])
  t.same(await rowsOf(trashed.id), [])
  t.equal((await triggerAudits()).length, auditBefore, 'no audit row from the refusals')

  // Idempotency-Key: the first request takes the fast path, the replay the general one
  const key = randomKey()
  const first = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: { ...owner.headers, 'idempotency-key': key }, payload: {} })
  t.equal(first.statusCode, 202)
  const again = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: { ...owner.headers, 'idempotency-key': key }, payload: {} })
  t.equal(again.statusCode, 202)
  t.equal(again.json().id, first.json().id, 'the same ingestion')
  const other = await createDocument(app, owner.id)
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${other.id}/ingestions`, headers: { ...owner.headers, 'idempotency-key': key }, payload: {} }), 409, 'idempotency_key_reused')
  t.same(await rowsOf(other.id), [], 'a reused key writes nothing')
})

test('single trigger with the queue down: 503, and neither the row, its event nor its audit entry stays', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_REDIS_URL, 6379)
  const app = await build(t, { REDIS_URL: url })
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  await proxy.cut()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  assertErrorShape(t, res, 503, 'service_unavailable')
  t.same(await app.db.select().from(ingestions).where(eq(ingestions.documentId, doc.id)), [], 'no ingestion row')
  const audit = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'ingestion.trigger'), eq(auditEvents.actorId, ed.id)))
  t.same(audit, [], 'no audit row for a trigger that did not happen')
  await proxy.restore()
})

test('concurrent triggers share transactions (group commit): every answer and every row as if each ran alone', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const reader = await createUser(app, 'editor')
  const docs = await Promise.all(Array.from({ length: 6 }, async () => await createDocument(app, owner.id)))
  const readOnly = docs[0]!
  await share(app, readOnly.id, reader.id, 'read')
  const key = randomKey()
  type Call = { who: typeof owner, doc: string, key?: string, expect: number, code?: string }
  const calls: Call[] = []
  for (let i = 0; i < 48; i++) {
    const doc = docs[i % docs.length]!.id
    if (i % 12 === 5) calls.push({ who: reader, doc: readOnly.id, expect: 403, code: 'forbidden' })
    else if (i % 12 === 7) calls.push({ who: owner, doc: newId(), expect: 404, code: 'not_found' })
    else if (i % 12 === 9) calls.push({ who: owner, doc: docs[1]!.id, key, expect: 202 })
    else calls.push({ who: owner, doc, expect: 202 })
  }
  // Fewer transactions sent than calls means they shared.
  const { result: answers, taken: sent } = await countConnections(app.db.$batch!, async () => await Promise.all(calls.map(async c => await app.inject({
    method: 'POST',
    url: `/documents/${c.doc}/ingestions`,
    headers: { ...c.who.headers, ...(c.key !== undefined ? { 'idempotency-key': c.key } : {}) },
    payload: { pipeline: 'burst' },
  }))))
  t.ok(sent > 0 && sent < calls.length / 2, `the calls shared transactions (${sent} sent for ${calls.length} calls)`)
  const created = new Set<string>()
  const keyed = new Set<string>()
  for (const [i, res] of answers.entries()) {
    const c = calls[i]!
    if (c.expect !== 202) { assertErrorShape(t, res, c.expect, c.code!); continue }
    t.equal(res.statusCode, 202, `call ${i} accepted`)
    const body = res.json()
    t.equal(body.documentId, c.doc)
    if (c.key !== undefined) keyed.add(body.id)
    else created.add(body.id)
  }
  t.equal(keyed.size, 1, 'the keyed calls share one ingestion')
  const all = [...created, ...keyed]
  t.equal(created.size, calls.filter(c => c.expect === 202 && c.key === undefined).length, 'one ingestion per unkeyed call')
  const rows = await app.db.select().from(ingestions).where(eq(ingestions.requestedBy, owner.id))
  t.same(new Set(rows.map(r => r.id)), new Set(all), 'exactly the answered rows exist')
  const events = await app.db.select().from(ingestionEvents).where(inArray(ingestionEvents.ingestionId, all))
  t.equal(events.length, all.length, 'one queued event each')
  const audit = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'ingestion.trigger'), inArray(auditEvents.actorId, [owner.id, reader.id])))
  t.equal(audit.length, calls.filter(c => c.expect === 202).length, 'one audit row per accepted call (a keyed replay too), none for refusals')
  t.same(new Set(audit.map(a => a.subject)), new Set(all.map(id => `ingestion:${id}`)), 'each names its ingestion')
  for (const id of all) t.ok(await app.queues.ingestion.getJob(id), 'its dispatch job exists')
})
