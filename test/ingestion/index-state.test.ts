import t from 'tap'
import { eq } from 'drizzle-orm'
import { build, createUser } from '../helper.js'
import { documents, ingestions } from '../../drizzle/schema/index.js'
import { newId } from '../../src/lib/ids.js'
import { refreshIndex } from '../../src/domain/ingestions/index-state.js'
import { createDocument, postCallback } from './helpers.js'

// The index fields as a projection of the ingestions (src/domain/ingestions/index-state.ts).
t.test('a late success for an older version, or one the backend ignored, never moves the index back', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  await app.db.update(documents).set({ currentVersion: 3 }).where(eq(documents.id, doc.id))
  const now = new Date()
  const row = (version: number, status: string, result: unknown = null) => ({
    id: newId(),
    documentId: doc.id,
    status,
    operation: 'upsert',
    documentVersion: version,
    pipeline: 'p',
    options: {},
    requestedBy: ed.id,
    result,
    createdAt: now,
    updatedAt: now,
    finishedAt: status === 'succeeded' ? now : null,
  })
  const v1 = row(1, 'running')
  const v2 = row(2, 'succeeded', { chunks: 7, pipelineVersion: 'x1' })
  await app.db.insert(ingestions).values([v1, v2])
  t.equal(await refreshIndex(app.db, doc.id), 'pending', 'v1 still open')
  // v1's callback arrives late (it was accepted before v2 went out): applied to v1, not to the index
  const res = await postCallback(app, v1.id, { status: 'succeeded', result: { chunks: 1 } })
  t.equal(res.statusCode, 200)
  const [d] = await app.db.select().from(documents).where(eq(documents.id, doc.id))
  t.match(d, { indexState: 'stale', indexVersion: 2, indexChunks: 7, indexPipelineVersion: 'x1' }, 'still v2 (and stale: v3 is current)')

  await app.db.insert(ingestions).values(row(3, 'succeeded', { ignored: 'older-version' }))
  await refreshIndex(app.db, doc.id)
  const [e] = await app.db.select().from(documents).where(eq(documents.id, doc.id))
  t.match(e, { indexState: 'stale', indexVersion: 2 }, 'an ignored upsert leaves the index where it was')

  await app.db.insert(ingestions).values({ ...row(3, 'failed'), lastError: 'parser exploded' })
  t.equal(await refreshIndex(app.db, doc.id), 'failed')
  const res2 = await app.inject({ method: 'GET', url: `/documents/${doc.id}`, headers: ed.headers })
  t.match(res2.json().index, { state: 'failed', version: 2, chunks: 7, pipeline: 'p', pipelineVersion: 'x1', lastError: 'parser exploded' })

  const del = { ...row(3, 'succeeded'), operation: 'delete' }
  await app.db.insert(ingestions).values(del)
  t.equal(await refreshIndex(app.db, doc.id), 'none', 'after a delete the index holds nothing')
  const [f] = await app.db.select().from(documents).where(eq(documents.id, doc.id))
  t.match(f, { indexVersion: null, indexChunks: null, indexedAt: null, indexError: null })
})

t.test('GET /documents?indexState= filters, walking documents_index_state_idx', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const ed = await createUser(app, 'editor')
  const a = await createDocument(app, ed.id)
  const b = await createDocument(app, ed.id)
  await app.db.update(documents).set({ indexState: 'failed' }).where(eq(documents.id, b.id))
  for (const headers of [ed.headers, admin.headers]) {
    const failed = await app.inject({ method: 'GET', url: `/documents?indexState=failed&ownerId=${ed.id}`, headers })
    t.same(failed.json().items.map((d: { id: string }) => d.id), [b.id])
    const none = await app.inject({ method: 'GET', url: `/documents?indexState=none&ownerId=${ed.id}`, headers })
    t.same(none.json().items.map((d: { id: string }) => d.id), [a.id])
  }
  const mine = await app.inject({ method: 'GET', url: '/documents?indexState=failed', headers: ed.headers })
  t.ok(mine.json().items.some((d: { id: string }) => d.id === b.id), 'the access branches take the filter too')
  t.equal((await app.inject({ method: 'GET', url: '/documents?indexState=bogus', headers: ed.headers })).statusCode, 400)
  const [plan] = await app.db.$client.query("EXPLAIN SELECT d.id FROM documents d WHERE d.deleted_at IS NULL AND d.index_state = 'failed' ORDER BY d.id DESC LIMIT 21") as unknown as [Array<{ key: string | null, possible_keys: string | null }>]
  t.ok(plan.some(p => (p.possible_keys ?? '').includes('documents_index_state_idx')), `the index is a candidate (${JSON.stringify(plan)})`)
})
