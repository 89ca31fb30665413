import t from 'tap'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { testTempDir } from '../helper.js'
import { startPython, indexedDocument, indexedChunks, searchIndex, controlPython, eventually } from './helpers.js'
import { fileServer, ingestClient, docId } from './python-index-helpers.js'
import { signedHeaders } from '../../src/domain/ingestion-signing.js'

// The reference backend when things go wrong: failed upserts leave the previous version whole,
// operations on one document do not overtake each other, the index survives a restart, and the
// knobs Quire's lifecycle tests use (injected 5xx, delays) do what they say.
const SECRET = 'python-index-faults-secret-0123456789'
const files = await fileServer()
t.teardown(files.close)
const py = await startPython(SECRET, ['--chunk-size', '60'])
t.teardown(py.close)
const client = ingestClient(py, files)

const outcomes = async (id: string): Promise<string[]> =>
  (await controlPython(py)).received.filter((r: { documentId: string }) => r.documentId === id).map((r: { outcome: string }) => r.outcome)

t.test('an upsert failing half-way leaves the previous version\'s chunks searchable', async (t) => {
  const id = docId('halfway')
  await client.upsert(id, 1, 'the first version mentions a capybara and more words to fill chunks up nicely')
  const held = await indexedDocument(py, id)
  const chunks = await indexedChunks(py, id)
  t.ok(chunks.length > 1)
  const intact = async (why: string) => {
    t.same(await indexedDocument(py, id), held, `${why}: still v1`)
    t.same(await indexedChunks(py, id), chunks, `${why}: v1's chunks`)
    t.match(await searchIndex(py, 'capybara'), [{ documentId: id, version: 1 }], `${why}: v1 searchable`)
  }

  const gone = await client.upsert(id, 2, 'never served', { serve: false })
  t.match(gone, { status: 422, body: { status: 'failed', error: 'download refused with HTTP 404' } })
  await intact('download 404')

  const bytes = Buffer.from('tampered on the way')
  files.put(`/files/${id}/v3`, 'something else entirely')
  const tampered = await client.send({ ingestionId: 'x', operation: 'upsert', callbackUrl: `${files.base}/cb`, document: { id, version: 3, size: bytes.length, sha256: '0'.repeat(64), downloadUrl: `${files.base}/files/${id}/v3` } }, `k-${docId('t')}`)
  t.match(tampered, { status: 422, body: { error: /size mismatch|sha256 mismatch/ } })
  await intact('size/sha256 mismatch')

  // A fault inside the write, after the old chunks were deleted and some new ones inserted: rolled back.
  await controlPython(py, { writeFaults: 1 })
  const key = `k-${id}-v4`
  const fault = await client.upsert(id, 4, 'the fourth version about a quetzal', { key })
  t.match(fault, { status: 500, body: { error: 'internal error: InjectedFault' } })
  await intact('a fault in the write transaction')
  t.same(await searchIndex(py, 'quetzal'), [])
  const retried = await client.upsert(id, 4, 'the fourth version about a quetzal', { key })
  t.match(retried.body, { status: 'succeeded', result: { version: 4, replaced: 1 } }, 'a failure is not remembered: the retry is worked')
  t.same(await searchIndex(py, 'capybara'), [])
  t.match(await searchIndex(py, 'quetzal'), [{ documentId: id, version: 4 }])
  t.same(await outcomes(id), ['succeeded', 'failed', 'failed', 'error', 'succeeded'])
})

t.test('while a new version downloads, the old one stays in the index', async (t) => {
  const id = docId('slow')
  await client.upsert(id, 1, 'old text with a dugong')
  const release = files.hold(`/files/${id}/v2`)
  const pending = client.upsert(id, 2, 'new text with a manatee')
  await eventually(async () => files.hits(`/files/${id}/v2`) === 1)
  t.match(await indexedDocument(py, id), { version: 1 })
  t.match(await searchIndex(py, 'dugong'), [{ documentId: id, version: 1 }])
  release()
  t.match((await pending).body.result, { version: 2 })
  t.same(await searchIndex(py, 'dugong'), [])
  t.match(await searchIndex(py, 'manatee'), [{ documentId: id, version: 2 }])
})

t.test('a delete that arrives while an upsert of the same document runs waits for it', async (t) => {
  const id = docId('race')
  const release = files.hold(`/files/${id}/v1`)
  const upsert = client.upsert(id, 1, 'a straggler upsert')
  await eventually(async () => files.hits(`/files/${id}/v1`) === 1)
  const del = client.remove(id, 1)
  await eventually(async () => (await controlPython(py)).active.some((a: { operation: string, documentId: string }) => a.operation === 'delete' && a.documentId === id))
  const { active } = await controlPython(py)
  t.match(active.filter((a: { documentId: string }) => a.documentId === id), [{ operation: 'upsert', overlapped: false }, { operation: 'delete', overlapped: true }], 'both in progress; the second noted as overlapping')
  const other = await client.upsert(docId('other'), 1, 'another document is not held up')
  t.equal(other.status, 200)
  release()
  t.match((await upsert).body.result, { version: 1 })
  t.match((await del).body.result, { deleted: 1 }, 'the delete ran after the upsert, and removed what it wrote')
  t.equal(await indexedDocument(py, id), null)
  t.same((await controlPython(py)).active, [], 'nothing in progress any more')
})

t.test('injected failures and delays: --fail-first, POST /_control', async (t) => {
  const flaky = await startPython(SECRET, ['--fail-first', '2', '--pipeline-version', 'p-7'])
  t.teardown(flaky.close)
  const c = ingestClient(flaky, files)
  const id = docId('flaky')
  const key = `k-${id}`
  t.same([(await c.upsert(id, 1, 'x', { key })).status, (await c.upsert(id, 1, 'x', { key })).status], [503, 503])
  t.equal(files.hits(`/files/${id}/v1`), 0, 'nothing was worked')
  t.match(await c.upsert(id, 1, 'x', { key }), { status: 200, body: { result: { version: 1, pipelineVersion: 'p-7' } } })

  t.match(await controlPython(flaky, { failNext: 1, failStatus: 500, pipelineVersion: 'p-8' }), { failNext: 1, failStatus: 500, pipelineVersion: 'p-8' })
  t.equal((await c.remove(id, 1)).status, 500)
  t.match(await c.remove(id, 1), { status: 200, body: { result: { deleted: 1 } } })
  t.match(await c.upsert(id, 2, 'y'), { status: 200, body: { result: { version: 2, pipelineVersion: 'p-8' } } })
  const state = await controlPython(flaky)
  t.same(state.received.map((r: { outcome: string, operation: string }) => `${r.operation}:${r.outcome}`),
    ['upsert:injected-failure', 'upsert:injected-failure', 'upsert:succeeded', 'delete:injected-failure', 'delete:succeeded', 'upsert:succeeded'])
  t.match(state.received[0], { idempotencyKey: key, ingestionId: key, documentId: id, version: 1, status: 503 })

  // failForMs: an outage for a while (every request, however many), ended early by failForMs: 0
  const outage = await controlPython(flaky, { failForMs: 600000, failStatus: 502 })
  t.ok(outage.failForMs > 590000 && outage.failForMs <= 600000, `failForMs left: ${outage.failForMs}`)
  t.same([(await c.upsert(id, 3, 'z')).status, (await c.remove(id, 3)).status, (await c.upsert(id, 3, 'z')).status], [502, 502, 502])
  t.equal(files.hits(`/files/${id}/v3`), 0, 'nothing was worked during the outage')
  t.match(await controlPython(flaky, { failForMs: 0, failStatus: 500 }), { failForMs: 0 })
  t.match(await c.upsert(id, 3, 'z'), { status: 200, body: { result: { version: 3 } } })

  await controlPython(flaky, { delayMs: 300, deleteDelayMs: 0, clearReceived: true })
  let started = Date.now()
  await c.upsert(docId('delayed'), 1, 'slow')
  t.ok(Date.now() - started >= 300, 'upserts wait delayMs')
  t.equal((await controlPython(flaky)).received.length, 1, 'clearReceived')
  started = Date.now()
  await c.remove(docId('delayed'), 1)
  t.ok(Date.now() - started < 3000, 'deletes wait deleteDelayMs')

  const unsigned = await fetch(`${flaky.base}/_control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"failNext":5}' })
  t.equal(unsigned.status, 401, 'the control endpoint is signed')
  t.equal((await fetch(`${flaky.base}/_control`)).status, 401)
  const bad = async (body: unknown) => {
    const raw = JSON.stringify(body)
    return await fetch(`${flaky.base}/_control`, { method: 'POST', headers: signedHeaders(SECRET, { method: 'POST', path: '/_control' }, raw), body: raw })
  }
  t.match(await (await bad({ failNext: -1 })).json(), { error: /failNext must be an integer/ })
  t.equal((await bad({ failStatus: 404 })).status, 400)
  t.equal((await bad({ delayMs: '5' })).status, 400)
  t.equal((await bad([1])).status, 400)
  t.equal((await bad({ failForMs: 600001 })).status, 400)
  t.match(await controlPython(flaky, {}), { failNext: 0, failStatus: 500, delayMs: 300, pipelineVersion: 'p-8' }, 'a refused update changed nothing')
})

t.test('payloads are checked: operation, document.id, document.version', async (t) => {
  const id = docId('check')
  for (const operation of ['purge', '', 'UPSERT']) t.equal((await client.upsert(id, 1, 'x', { operation })).status, 400, `operation ${operation}`)
  for (const version of [0, -1, 1.5, '2', true, null]) {
    const res = await client.send({ ingestionId: 'v', operation: 'delete', callbackUrl: `${files.base}/cb`, document: { id, version } }, 'k')
    t.match(res, { status: 400, body: { error: /document\.version must be an integer >= 1/ } }, `version ${JSON.stringify(version)}`)
  }
  t.match(await client.send({ ingestionId: 'v', operation: 'delete', callbackUrl: `${files.base}/cb`, document: { version: 1 } }, 'k'), { status: 400, body: { error: /document\.id/ } })
  t.match(await client.send({ ingestionId: 'v', operation: 'upsert', callbackUrl: `${files.base}/cb`, document: { id, version: 1 } }, 'k'), { status: 400, body: { error: /downloadUrl/ } }, 'an upsert needs the download')
  const async = await client.remove(id, 1, { options: { async: true } })
  t.equal(async.status, 202, 'a delete can be asked to answer by callback too')
  await eventually(async () => files.callbacks.some(c => c.body.ingestionId === async.key))
  t.match(files.callbacks.find(c => c.body.ingestionId === async.key)!.body, { status: 'succeeded', result: { deleted: 0 } })
})

t.test('the index is a file: it survives a restart, and so do the answers to Idempotency-Keys', async (t) => {
  const path = join(testTempDir('pyindex'), 'sub', 'index.sqlite')
  const first = await startPython(SECRET, ['--index-path', path, '--no-fts'])
  const c1 = ingestClient(first, files)
  const id = docId('persist')
  const key = `k-${id}`
  const answer = await c1.upsert(id, 1, 'a persistent axolotl', { key })
  await first.close()
  t.ok(existsSync(path), 'the directory is created')
  const second = await startPython(SECRET, ['--index-path', path])
  t.teardown(second.close)
  t.match(await indexedDocument(second, id), { version: 1, chunks: 1 })
  t.match(await searchIndex(second, 'axolotl'), [{ documentId: id }], 'opened with FTS5 now: the FTS table is built from the chunks')
  const again = await ingestClient(second, files).upsert(id, 1, 'a persistent axolotl', { key })
  t.same(again.body, answer.body, 'a redelivery after the restart gets the first answer')
  t.equal(files.hits(`/files/${id}/v1`), 1)
})

t.test('concurrent versions of many documents, on a file index: each ends at its newest version', async (t) => {
  const onFile = await startPython(SECRET, ['--index-path', join(testTempDir('pyindex'), 'index.sqlite'), '--chunk-size', '60'])
  t.teardown(onFile.close)
  const c = ingestClient(onFile, files)
  const ids = Array.from({ length: 8 }, () => docId('many'))
  const sends = ids.flatMap(id => [1, 2, 3, 4].map(v => ({ id, v })))
  sends.sort(() => Math.random() - 0.5)
  const answers = await Promise.all(sends.map(async ({ id, v }) => await c.upsert(id, v, `${id} version${v} ${'filler '.repeat(v * 5)}`)))
  t.ok(answers.every(a => a.status === 200 && a.body.status === 'succeeded'), 'every upsert answered succeeded (worked or ignored)')
  for (const id of ids) {
    const held = await indexedDocument(onFile, id)
    t.match(held, { version: 4 }, `${id}: the newest`)
    const chunks = await indexedChunks(onFile, id)
    t.ok(chunks.length === held!.chunks && chunks.every(ch => ch.version === 4), `${id}: only v4's chunks`)
  }
  t.equal((await searchIndex(onFile, 'version4', 100)).filter(h => ids.includes(h.documentId)).length, ids.length)
  t.same(await searchIndex(onFile, 'version1', 100), [])
})

t.test('--index-token guards the index API', async (t) => {
  const guarded = await startPython(SECRET, ['--index-token', 'tok-123'])
  t.teardown(guarded.close)
  t.equal((await fetch(`${guarded.base}/index/search?q=x`)).status, 401)
  t.equal((await fetch(`${guarded.base}/index/search?q=x`, { headers: { authorization: 'Bearer tok-123' } })).status, 200)
  t.equal((await fetch(`${guarded.base}/index/documents/nope`, { headers: { authorization: 'Bearer tok-123' } })).status, 404)
  t.equal((await fetch(`${guarded.base}/health`)).status, 200)
})
