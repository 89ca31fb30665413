import t from 'tap'
import { eq } from 'drizzle-orm'
import { buildApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { testConfig, createUser } from '../helper.js'
import { documents, ingestions } from '../../drizzle/schema/index.js'
import { eventually, waitForStatus } from './helpers.js'
import { newId } from '../../src/lib/ids.js'
import { indexBackend, indexEventually, indexOf } from './index-helpers.js'
import { addVersion as postVersion, upload } from '../documents/helpers.js'
import { reindexStale } from '../../src/jobs/ingestion/recovery.js'

// The index follows every document (docs/ingestion.md, "Lifecycle" and "Ordering"), against a
// slowed scripted backend that keeps an index by the contract. New versions go through the real
// route (POST /documents/:id/versions), so its hook into the ingestions is what is tested.
const backend = await indexBackend({ delayMs: 400 })
t.teardown(backend.close)
const app = await buildApp(testConfig({ INGESTION_URL: backend.url, INGESTION_BACKOFF_MS: 20, INGESTION_MAX_ATTEMPTS: 10 }))
const workers = await startWorkers(app, ['ingestion'])
t.teardown(async () => { await workers.close(); await app.close() })
const ed = await createUser(app, 'editor')

/** A document through the real upload route (POST /documents): its objects where the routes keep them. */
async function uploadDocument (): Promise<{ id: string }> {
  const res = await upload(app, ed.headers, { filename: 'notes.txt', contentType: 'text/plain', data: `hello world ${newId()}\n` })
  if (res.statusCode !== 201) throw new Error(`POST /documents: ${res.statusCode} ${res.body}`)
  return { id: res.json().id as string }
}

/** A new version through the real route (POST /documents/:id/versions, multipart): its number. */
async function addVersion (documentId: string, content: string): Promise<number> {
  const res = await postVersion(app, ed, documentId, content)
  if (res.statusCode !== 201) throw new Error(`POST /documents/${documentId}/versions: ${res.statusCode} ${res.body}`)
  return res.json().number as number
}

const ingestionsOf = async (documentId: string) => await app.db.select().from(ingestions).where(eq(ingestions.documentId, documentId)).orderBy(ingestions.id)
const settled = async (documentId: string) => await eventually(async () => {
  const rows = await ingestionsOf(documentId)
  return rows.every(r => r.status !== 'queued' && r.status !== 'running') ? rows : null
}, 60000)

t.test('v1 -> v2 -> v3 faster than the backend: v2 superseded, the backend ends holding v3, indexed at v3', async (t) => {
  const doc = await uploadDocument()
  backend.pause()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: { pipeline: 'fast' } })
  t.equal(res.statusCode, 202)
  t.equal(res.json().documentVersion, 1, 'the trigger records the version it sends')
  t.equal((await indexOf(app, ed.headers, doc.id)).state, 'pending')
  await waitForStatus(app, ed.headers, res.json().id, ['running'])
  t.equal(await addVersion(doc.id, 'second'), 2)
  t.equal(await addVersion(doc.id, 'third'), 3)
  backend.resume()
  const rows = await settled(doc.id)
  t.same(rows.map(r => [r.operation, r.documentVersion, r.status]), [['upsert', 1, 'succeeded'], ['upsert', 2, 'superseded'], ['upsert', 3, 'succeeded']])
  t.ok(rows.every(r => r.pipeline === 'fast'), 're-ingested with the pipeline of the last upsert')
  t.same(backend.sent.filter(s => s.documentId === doc.id).map(s => s.version), [1, 3], 'v2 was never sent')
  t.equal(backend.held.get(doc.id), 3)
  const index = await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 3 })
  t.match(index, { state: 'indexed', version: 3, chunks: 3, pipeline: 'fast', pipelineVersion: 'scripted-1', lastError: null })
  t.type(index.indexedAt, 'string')
  const sup = await app.inject({ method: 'GET', url: `/ingestions/${rows[1]!.id}`, headers: ed.headers })
  t.equal(sup.json().status, 'superseded')
  t.ok(sup.json().events.some((e: { type: string }) => e.type === 'superseded'), 'its timeline says why')
  const retry = await app.inject({ method: 'POST', url: `/ingestions/${rows[1]!.id}/retry`, headers: ed.headers })
  t.equal(retry.statusCode, 409, 'a superseded ingestion cannot be retried')
})

t.test('trash sends a delete, restore the current version again, purge a delete delivered after the row is gone', async (t) => {
  const doc = await uploadDocument()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  await waitForStatus(app, ed.headers, res.json().id, ['succeeded'], 30000)
  await addVersion(doc.id, 'v2 bytes')
  await settled(doc.id)
  t.equal(backend.held.get(doc.id), 2)

  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers })).statusCode, 204)
  const [trashed] = await app.db.select().from(documents).where(eq(documents.id, doc.id))
  t.equal(trashed!.indexState, 'removing', 'removing while the delete is on its way')
  await settled(doc.id)
  t.notOk(backend.held.has(doc.id), 'the backend holds nothing of a trashed document')
  await eventually(async () => (await app.db.select().from(documents).where(eq(documents.id, doc.id)))[0]?.indexState === 'none')
  const trashedIndex = await app.db.select().from(documents).where(eq(documents.id, doc.id))
  t.match(trashedIndex[0], { indexState: 'none', indexVersion: null })

  t.equal((await app.inject({ method: 'POST', url: `/documents/${doc.id}/restore`, headers: ed.headers })).statusCode, 200)
  await settled(doc.id)
  t.equal(backend.held.get(doc.id), 2, 'restore: the current version again')
  await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 2 })

  // Purged while its delete is still on its way: that delete is delivered without the row.
  backend.pause()
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers })).statusCode, 204)
  const purge = await app.inject({ method: 'DELETE', url: `/documents/${doc.id}?permanent=true`, headers: ed.headers })
  t.equal(purge.statusCode, 204)
  t.same(await app.db.select().from(documents).where(eq(documents.id, doc.id)), [], 'the row is gone')
  backend.resume()
  await settled(doc.id)
  t.notOk(backend.held.has(doc.id), 'nothing after the purge')
  const ops = (await ingestionsOf(doc.id)).map(r => `${r.operation}:${r.documentVersion}:${r.status}`)
  t.same(ops, ['upsert:1:succeeded', 'upsert:2:succeeded', 'delete:2:succeeded', 'upsert:2:succeeded', 'delete:2:succeeded'], 'trash, restore, trash: one ingestion each; the purge had nothing more to send')
})

t.test('a live document purged by a manager: the delete is delivered without the row', async (t) => {
  const admin = await createUser(app, 'admin')
  const doc = await uploadDocument()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  await waitForStatus(app, ed.headers, res.json().id, ['succeeded'], 30000)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}?permanent=true`, headers: admin.headers })).statusCode, 204)
  const rows = await settled(doc.id)
  t.same(rows.map(r => `${r.operation}:${r.status}`), ['upsert:succeeded', 'delete:succeeded'])
  t.ok(backend.sent.some(s => s.ingestionId === rows[0]!.id), 'the upsert was sent')
  t.notOk(backend.held.has(doc.id))
  const del = backend.sent.find(s => s.ingestionId === rows[1]!.id)
  t.same(del, { operation: 'delete', documentId: doc.id, version: 1, ingestionId: rows[1]!.id })
})

t.test('a document never ingested: no index traffic on new versions, trash or purge', async (t) => {
  const doc = await uploadDocument()
  await addVersion(doc.id, 'again')
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: `/documents/${doc.id}/restore`, headers: ed.headers })).statusCode, 200)
  t.same(await ingestionsOf(doc.id), [])
  t.match(await indexOf(app, ed.headers, doc.id), { state: 'none', version: null, chunks: null, pipeline: null, pipelineVersion: null, indexedAt: null, lastError: null })
})

t.test('the backend answering 5xx for a while: the same end state, v2 never sent', async (t) => {
  const doc = await uploadDocument()
  backend.setFailures(3)
  backend.pause()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  await waitForStatus(app, ed.headers, res.json().id, ['running'])
  await addVersion(doc.id, 'two')
  await addVersion(doc.id, 'three')
  backend.resume()
  const rows = await settled(doc.id)
  t.same(rows.map(r => r.status), ['succeeded', 'superseded', 'succeeded'])
  t.equal(backend.held.get(doc.id), 3)
  t.notOk(backend.sent.some(s => s.documentId === doc.id && s.version === 2))
  await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 3 })
})

t.test('a new version whose upsert was never created (the hook lost it): the recovery sweep sends it', async (t) => {
  const doc = await uploadDocument()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(res.statusCode, 202)
  await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 1 })
  // A process whose hook does nothing (AUTO_REINGEST off there) adds v2: the index falls behind.
  const quiet = await buildApp(testConfig({ INGESTION_URL: backend.url, AUTO_REINGEST: false, STORAGE_DIR: app.config.STORAGE_DIR }))
  t.teardown(async () => await quiet.close())
  const v2 = await postVersion(quiet, ed, doc.id, 'second, unannounced')
  t.equal(v2.statusCode, 201)
  await indexEventually(app, ed.headers, doc.id, { state: 'stale', version: 1 })
  t.equal(await reindexStale(app, 60_000, { ids: [doc.id] }), 0, 'left alone within the grace period')
  t.equal(await reindexStale(quiet, 0, { ids: [doc.id] }), 0, 'nothing to do where AUTO_REINGEST is off')
  t.equal(await reindexStale(app, 0, { ids: [doc.id] }), 1, 'the sweep creates the upsert of v2')
  t.equal(await reindexStale(app, 0, { ids: [doc.id] }), 0, 'once: the document is pending now')
  const rows = await settled(doc.id)
  t.same(rows.map(r => [r.operation, r.documentVersion, r.status]), [['upsert', 1, 'succeeded'], ['upsert', 2, 'succeeded']])
  t.equal(backend.held.get(doc.id), 2)
  await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 2 })
})
