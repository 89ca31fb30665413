import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { eq } from 'drizzle-orm'
import { startWorkers } from '../../src/worker-runner.js'
import { createUser, testConfig } from '../helper.js'
import { documents, documentVersions, ingestions } from '../../drizzle/schema/index.js'
import { addVersion, buildWith, objects, upload } from '../documents/helpers.js'
import { startPython, indexedDocument, searchIndex, controlPython, eventually, waitForStatus, freePort, randomKey } from './helpers.js'
import { indexEventually, indexOf } from './index-helpers.js'

// The index lifecycle of issue 20 end to end: the real HTTP routes (upload, new versions, ingest,
// trash, restore, purge), a worker in-process, and the real Python reference service as a process,
// checked through its own /index API; on local storage and on S3. The scripted-backend version of
// these scenarios (exact sends, pause/resume) is index-lifecycle.test.ts.
const py = await startPython(testConfig().INGESTION_SECRET)
t.teardown(py.close)

interface Received { documentId: string, operation: string, version: number, overlapped: boolean, outcome: string }
const receivedFor = async (id: string): Promise<Received[]> =>
  ((await controlPython(py)).received as Received[]).filter(r => r.documentId === id)

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: new versions, trash, restore and purge, followed by the Python index`, async (t) => {
    const port = await freePort()
    const app = await buildWith(t, driver, { INGESTION_URL: py.url, PUBLIC_URL: `http://127.0.0.1:${port}`, INGESTION_BACKOFF_MS: 50, INGESTION_MAX_ATTEMPTS: 10 })
    await app.listen({ port, host: '127.0.0.1' })
    const workers = await startWorkers(app, ['ingestion', 'cleanup'])
    try {
      await lifecycle(t, app, driver)
    } finally {
      await controlPython(py, { delayMs: 0 })
      await workers.close()
    }
  })
}

async function lifecycle (t: Test, app: FastifyInstance, driver: string): Promise<void> {
  const ed = await createUser(app, 'editor')
  // words of their own per version and run, so searches see only this document
  const word = (v: number): string => `word${v}x${randomKey()}`
  const words = [word(1), word(2), word(3)] as const
  const text = (n: number): string => `version ${n} of the ${driver} document mentions ${words[n - 1]!} among other words\n`
  const rows = async (id: string) => await app.db.select().from(ingestions).where(eq(ingestions.documentId, id)).orderBy(ingestions.id)
  const settled = async (id: string) => await eventually(async () => {
    const all = await rows(id)
    return all.every(r => r.status !== 'queued' && r.status !== 'running') ? all : null
  }, 120000, 200)
  const found = async (n: number): Promise<string[]> => (await searchIndex(py, words[n - 1]!)).map(h => `${h.documentId}:${h.version}`)

  // (1) v1 ingested: the backend holds v1, with chunks and searchable text
  const up = await upload(app, ed.headers, { filename: 'v1.txt', contentType: 'text/plain', data: text(1) })
  t.equal(up.statusCode, 201, up.body)
  const id = up.json().id as string
  const first = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(first.statusCode, 202, first.body)
  const done = await waitForStatus(app, ed.headers, first.json().id, ['succeeded', 'failed'], 60000)
  t.equal(done.status, 'succeeded', done.lastError ?? '')
  const v1 = await indexedDocument(py, id)
  t.match(v1, { id, version: 1, pipelineVersion: 'reference-1' })
  t.ok(v1!.chunks > 0, 'v1 has chunks')
  t.same(await found(1), [`${id}:1`], 'v1 is searchable')
  t.match(await indexEventually(app, ed.headers, id, { state: 'indexed', version: 1 }), { chunks: v1!.chunks, pipelineVersion: 'reference-1' })

  // v2 and v3 while the backend is slowed and a re-run of v1 is in flight: v2 waits in the queue
  await controlPython(py, { delayMs: 3000 })
  const rerun = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(rerun.statusCode, 202, rerun.body)
  await waitForStatus(app, ed.headers, rerun.json().id, ['running', 'succeeded'], 60000)
  const v2 = await addVersion(app, ed, id, text(2), {}, 'v2.txt')
  t.equal(v2.statusCode, 201, v2.body)
  const v3 = await addVersion(app, ed, id, text(3), {}, 'v3.txt')
  t.equal(v3.statusCode, 201, v3.body)
  t.same([v2.json().number, v3.json().number], [2, 3])
  // Only when the re-run was still with the backend after v3 was queued is v2's fate certain.
  const [afterV3] = await app.db.select().from(ingestions).where(eq(ingestions.id, rerun.json().id))
  const v2Queued = afterV3!.status === 'running'
  await controlPython(py, { delayMs: 0 })
  const all = await settled(id)
  const v2Row = all.find(r => r.documentVersion === 2)
  if (v2Queued) {
    t.same(all.map(r => [r.operation, r.documentVersion, r.status]), [['upsert', 1, 'succeeded'], ['upsert', 1, 'succeeded'], ['upsert', 2, 'superseded'], ['upsert', 3, 'succeeded']])
    t.notOk((await receivedFor(id)).some(r => r.version === 2), 'v2 never reached the backend')
  } else {
    t.comment('the re-run of v1 finished before v3 was queued: v2 may have been sent; only the end state is checked')
    t.ok(v2Row === undefined || ['superseded', 'succeeded'].includes(v2Row.status), `v2: ${v2Row?.status ?? 'none'}`)
  }
  t.match(await indexedDocument(py, id), { id, version: 3 }, 'the backend ends holding v3')
  t.same(await found(3), [`${id}:3`], 'v3 is searchable')
  t.same(await found(1), [], 'nothing of v1')
  t.same(await found(2), [], 'nothing of v2')
  t.notOk((await receivedFor(id)).some(r => r.overlapped), 'never two operations on the document at once')
  const index = await indexEventually(app, ed.headers, id, { state: 'indexed', version: 3 })
  t.match(index, { state: 'indexed', version: 3, pipelineVersion: 'reference-1', lastError: null })
  t.ok((index.chunks as number) > 0)

  // (2) trash: the backend holds nothing, the index state is no longer indexed
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204)
  await settled(id)
  await eventually(async () => (await indexedDocument(py, id)) === null, 60000, 200)
  t.equal(await indexedDocument(py, id), null, 'GET /index/documents/:id is 404 after trash')
  t.same(await found(3), [], 'nothing searchable')
  // the owner still sees the trashed document (GET /documents/:id), with its index state
  const trashed = await eventually(async () => {
    const index = await indexOf(app, ed.headers, id)
    return index.state !== 'removing' ? index : null
  }, 60000, 200)
  t.match(trashed, { state: 'none', version: null }, 'a trashed document is out of the index')

  // restore: the current version again
  t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/restore`, headers: ed.headers })).statusCode, 200)
  await settled(id)
  await eventually(async () => (await indexedDocument(py, id))?.version === 3, 60000, 200)
  t.same(await found(3), [`${id}:3`], 'restored: v3 searchable again')
  await indexEventually(app, ed.headers, id, { state: 'indexed', version: 3 })

  // purge (trash, then for good): the backend holds nothing, the row and every version's object are gone
  const mine = async (): Promise<string[]> => (await objects(app)).filter(k => k.includes(id))
  const versionKeys = (await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id))).map(v => v.storageKey).sort()
  t.equal(versionKeys.length, 3)
  t.same(await mine(), versionKeys, 'the storage holds one object per version')
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: ed.headers })).statusCode, 204)
  t.same(await app.db.select().from(documents).where(eq(documents.id, id)), [], 'the row is gone')
  t.same(await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id)), [], 'and its versions\' rows')
  t.equal((await app.inject({ url: `/documents/${id}`, headers: ed.headers })).statusCode, 404)
  await settled(id)
  await eventually(async () => (await indexedDocument(py, id)) === null, 60000, 200)
  t.equal(await indexedDocument(py, id), null, 'nothing in the backend after the purge')
  await eventually(async () => (await mine()).length === 0, 60000, 200)
  t.same(await mine(), [], 'every version\'s object is gone')
  t.same((await rows(id)).filter(r => r.status === 'failed'), [], 'no ingestion failed')
  const sent = (await receivedFor(id)).map(r => `${r.operation}:${r.version}:${r.outcome}`)
  if (v2Queued) t.same(sent, ['upsert:1:succeeded', 'upsert:1:succeeded', 'upsert:3:succeeded', 'delete:3:succeeded', 'upsert:3:succeeded', 'delete:3:succeeded'], 'what the backend got: trash, restore, trash; the purge had nothing more to send')
  else t.notOk(sent.some(s => !s.endsWith(':succeeded')), sent.join(', '))
}
