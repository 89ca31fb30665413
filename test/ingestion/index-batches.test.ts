import t from 'tap'
import { buildApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { newId } from '../../src/lib/ids.js'
import { testConfig, createUser } from '../helper.js'
import { createDocument, eventually, json, scriptedBackend, share } from './helpers.js'

// Bulk re-run by filter (POST /ingestions with `filter`, GET /ingestion-batches/:id).
// 10k dispatches through one worker on a shared 2-core machine: minutes, not the default 240 s.
t.setTimeout(900_000)
const backend = await scriptedBackend((req, _n, res) => json(res, 200, { status: 'succeeded', result: { chunks: 1, pipelineVersion: 'p2', version: req.body.document.version } }))
t.teardown(backend.close)
const app = await buildApp(testConfig({ INGESTION_URL: backend.url, INGESTION_CONCURRENCY: 50 }))
const workers = await startWorkers(app, ['ingestion'])
t.teardown(async () => { await workers.close(); await app.close() })

/** `n` documents of `ownerId` in multi-row INSERTs (as bench/seed.ts does): no objects, the scripted backend downloads nothing. */
async function seedDocuments (ownerId: string, n: number, tag: string): Promise<void> {
  const now = new Date()
  for (let i = 0; i < n; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, n - i) }, () => {
      const id = newId()
      return [id, ownerId, `seeded ${id}`, 'seeded.txt', 'text/plain', 10, 'a'.repeat(64), 'ready', 'private', JSON.stringify([tag]), `documents/${id}`, '{}', 1, now, now]
    })
    await app.db.$client.query('INSERT INTO documents (id, owner_id, title, filename, mime_type, size, sha256, status, visibility, tags, storage_key, metadata, version, created_at, updated_at) VALUES ?', [rows])
    await app.db.$client.query('INSERT INTO document_tags (document_id, tag) VALUES ?', [rows.map(r => [r[0], tag])])
  }
}

t.test('a filtered re-run of 10k documents is accepted in under a second and drains', async (t) => {
  const admin = await createUser(app, 'admin')
  const owner = await createUser(app, 'editor')
  await seedDocuments(owner.id, 10_000, 'bulk')
  // the first call of a route compiles its schemas: not what is measured
  t.equal((await app.inject({ method: 'POST', url: '/ingestions', headers: admin.headers, payload: { filter: { ownerId: admin.id } } })).json().matched, 0)
  const started = Date.now()
  const res = await app.inject({ method: 'POST', url: '/ingestions', headers: admin.headers, payload: { filter: { ownerId: owner.id, indexState: 'none' }, pipeline: 'v2' } })
  const ms = Date.now() - started
  t.equal(res.statusCode, 202)
  t.equal(res.json().matched, 10_000)
  t.ok(ms < 1000, `accepted in ${ms} ms`)
  const batchId = res.json().batchId as string
  const done = await eventually(async () => {
    const b = (await app.inject({ method: 'GET', url: `/ingestion-batches/${batchId}`, headers: admin.headers })).json()
    return b.status === 'done' && b.succeeded === 10_000 ? b : null
  }, 840_000, 1000)
  t.comment(`10k ingestions drained in ${Math.round((Date.now() - started) / 1000)} s`)
  t.match(done, { matched: 10_000, created: 10_000, queued: 0, running: 0, failed: 0, superseded: 0, pipeline: 'v2', filter: { ownerId: owner.id, indexState: 'none' } })
  const list = await app.inject({ method: 'GET', url: `/documents?ownerId=${owner.id}&indexState=indexed&limit=100`, headers: admin.headers })
  t.equal(list.json().items.length, 100)
  t.match(list.json().items[0].index, { state: 'indexed', version: 1, chunks: 1, pipeline: 'v2', pipelineVersion: 'p2' })
  const none = await app.inject({ method: 'GET', url: `/documents?ownerId=${owner.id}&indexState=none`, headers: admin.headers })
  t.same(none.json().items, [], 'none left unindexed')

  // Re-run what an older pipeline version built: the same filter language, one call.
  const again = await app.inject({ method: 'POST', url: '/ingestions', headers: admin.headers, payload: { filter: { ownerId: owner.id, pipelineVersionNot: 'p2' } } })
  t.same(again.json().matched, 0, 'every document is at pipeline version p2')
})

t.test('who may run a batch, on which documents, and who may read it', async (t) => {
  const editor = await createUser(app, 'editor')
  const refused = await app.inject({ method: 'POST', url: '/ingestions', headers: editor.headers, payload: { filter: { tag: 'x' } } })
  t.equal(refused.statusCode, 403, 'ingestions:manage is required')
  // The route lets either permission in; each form asks for its own (POST /ingestions in docs/api.md).
  const managerOnly = await createUser(app, 'viewer', { grants: ['ingestions:manage'] })
  const byFilter = await app.inject({ method: 'POST', url: '/ingestions', headers: managerOnly.headers, payload: { filter: { tag: 'x' } } })
  t.equal(byFilter.statusCode, 202, 'the filter form needs ingestions:manage only')
  const byIds = await app.inject({ method: 'POST', url: '/ingestions', headers: managerOnly.headers, payload: { documentIds: [newId()] } })
  t.equal(byIds.statusCode, 403, 'the documentIds form needs ingestions:trigger')
  t.match(byIds.json().message, /ingestions:trigger/)
  const viewer = await createUser(app, 'viewer')
  const neither = await app.inject({ method: 'POST', url: '/ingestions', headers: viewer.headers, payload: { filter: { tag: 'x' } } })
  t.equal(neither.statusCode, 403)
  t.match(neither.json().message, /ingestions:trigger or ingestions:manage/)
  const lead = await createUser(app, 'editor', { grants: ['ingestions:manage'] })
  const other = await createUser(app, 'editor')
  const tag = `t${newId().slice(-8)}`
  const mine = await createDocument(app, lead.id)
  const sharedWrite = await createDocument(app, other.id)
  const sharedRead = await createDocument(app, other.id)
  const foreign = await createDocument(app, other.id, { visibility: 'internal' })
  await share(app, sharedWrite.id, lead.id, 'write')
  await share(app, sharedRead.id, lead.id, 'read')
  for (const d of [mine, sharedWrite, sharedRead, foreign]) await app.db.$client.query('INSERT INTO document_tags (document_id, tag) VALUES (?, ?)', [d.id, tag])
  const res = await app.inject({ method: 'POST', url: '/ingestions', headers: lead.headers, payload: { filter: { tag } } })
  t.equal(res.statusCode, 202)
  t.equal(res.json().matched, 2, 'only documents the caller may write: their own and the write share')
  const batchId = res.json().batchId as string
  const b = await eventually(async () => {
    const r = (await app.inject({ method: 'GET', url: `/ingestion-batches/${batchId}`, headers: lead.headers })).json()
    return r.status === 'done' && r.succeeded === 2 ? r : null
  }, 60_000)
  t.equal(b.created, 2)
  const ids = (await app.db.$client.query('SELECT document_id FROM ingestions WHERE batch_id = ? ORDER BY document_id', [batchId]))[0] as Array<{ document_id: string }>
  t.same(ids.map(r => r.document_id).sort(), [mine.id, sharedWrite.id].sort())
  t.equal((await app.inject({ method: 'GET', url: `/ingestion-batches/${batchId}`, headers: other.headers })).statusCode, 404, 'not the requester, no ingestions:manage: 404')
  t.equal((await app.inject({ method: 'GET', url: `/ingestion-batches/${batchId.toUpperCase()}`, headers: lead.headers })).statusCode, 200, 'ids in any letter case')
  t.equal((await app.inject({ method: 'GET', url: `/ingestion-batches/${newId()}`, headers: lead.headers })).statusCode, 404)
  const bad = await app.inject({ method: 'POST', url: '/ingestions', headers: lead.headers, payload: { filter: { indexState: 'nope' } } })
  t.equal(bad.statusCode, 400)
})
