import t from 'tap'
import { deflateSync } from 'node:zlib'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { ROOT, startPython, indexedDocument, indexedChunks, searchIndex, controlPython, eventually } from './helpers.js'
import { fileServer, ingestClient, docId } from './python-index-helpers.js'

// The reference backend's index, driven like Quire's worker drives it: the real service as a
// process, real signed requests; a small file server stands in for Quire's storage.
const SECRET = 'python-index-secret-0123456789'
const files = await fileServer()
t.teardown(files.close)
const py = await startPython(SECRET, ['--chunk-size', '80', '--async-threshold', '100000'])
t.teardown(py.close)
const client = ingestClient(py, files)

/** A small PDF whose first page's text is in a FlateDecode stream and whose second page's is not. */
function pdf (compressed: string, plain: string): Buffer {
  const content = deflateSync(Buffer.from(`BT /F1 12 Tf 72 720 Td (${compressed}) Tj 0 -14 Td [(sec) -20 (ond) -400 (line)] TJ ET`))
  return Buffer.concat([
    Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Count 2 >> endobj\n'),
    Buffer.from('3 0 obj << /Type /Page /Parent 2 0 R /Contents 5 0 R >> endobj\n4 0 obj << /Type /Page /Parent 2 0 R /Contents 6 0 R >> endobj\n'),
    Buffer.from(`5 0 obj << /Length ${content.length} /Filter /FlateDecode >>\nstream\n`), content, Buffer.from('\nendstream\nendobj\n'),
    Buffer.from(`6 0 obj << /Length 40 >>\nstream\nBT (${plain.replace(/[()\\]/g, '\\$&')}) Tj ET\nendstream\nendobj\n%%EOF\n`),
  ])
}

const words = (prefix: string, n: number): string => Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(' ')

t.test('upsert v1 then v2: the index holds v2 only, with v2\'s chunks', async (t) => {
  const id = docId('swap')
  const v1 = await client.upsert(id, 1, `${words('alpha', 30)} ocelot`)
  t.equal(v1.status, 200)
  t.match(v1.body, { status: 'succeeded', result: { version: 1, pipelineVersion: 'reference-1', kind: 'text', replaced: null } })
  t.ok(v1.body.result.chunks > 1, 'long text: several chunks')
  t.match(await indexedDocument(py, id), { id, version: 1, chunks: v1.body.result.chunks, pipelineVersion: 'reference-1', indexedAt: /^\d{4}-\d\d-\d\dT/ })

  const v2 = await client.upsert(id, 2, 'pangolin in the second version')
  t.match(v2.body, { status: 'succeeded', result: { version: 2, chunks: 1, replaced: 1 } })
  t.match(await indexedDocument(py, id), { version: 2, chunks: 1 })
  t.same(await indexedChunks(py, id), [{ chunk: 0, version: 2, text: 'pangolin in the second version' }])
  t.same(await searchIndex(py, 'ocelot'), [], 'nothing of v1 is searchable')
  t.match(await searchIndex(py, 'pangolin'), [{ documentId: id, version: 2, chunk: 0, snippet: /pangolin/ }])

  const again = await client.upsert(id, 2, 'pangolin again, same version re-run')
  t.match(again.body.result, { version: 2, replaced: 2 }, 'the same version again is worked again (a re-run)')
  t.match(await indexedChunks(py, id), [{ text: /re-run/ }])
})

t.test('an upsert of an older version than the index holds changes nothing', async (t) => {
  const id = docId('older')
  await client.upsert(id, 3, `${words('gamma', 25)} tapir`)
  const held = await indexedDocument(py, id)
  const before = await indexedChunks(py, id)
  const old = await client.upsert(id, 2, 'the older version')
  t.equal(old.status, 200)
  t.same(old.body, { status: 'succeeded', result: { chunks: held!.chunks, version: 3, pipelineVersion: 'reference-1', ignored: 'older-version' } })
  t.equal(files.hits(`/files/${id}/v2`), 0, 'not even downloaded')
  t.same(await indexedDocument(py, id), held)
  t.same(await indexedChunks(py, id), before)
})

t.test('delete removes everything of the document and is idempotent', async (t) => {
  const id = docId('del')
  const up = await client.upsert(id, 1, `${words('delta', 30)} narwhal`)
  await client.upsert(id, 2, `${words('delta', 30)} narwhal two`)
  t.ok(up.body.result.chunks > 1)
  const held = await indexedDocument(py, id)
  const del = await client.remove(id, 2)
  t.equal(del.status, 200)
  t.same(del.body, { status: 'succeeded', result: { deleted: held!.chunks, chunks: 0 } })
  t.equal(await indexedDocument(py, id), null, 'GET /index/documents/:id is 404')
  t.same(await indexedChunks(py, id), [])
  t.same(await searchIndex(py, 'narwhal'), [])
  const again = await client.remove(id, 2)
  t.same(again.body, { status: 'succeeded', result: { deleted: 0, chunks: 0 } }, 'a second delete: 200, nothing removed')
  const never = await client.remove(docId('never'), 1)
  t.equal(never.status, 200, 'a document the index never held: 200 too')
  t.equal(never.body.result.deleted, 0)
  const restored = await client.upsert(id, 2, 'narwhal restored')
  t.match(restored.body.result, { version: 2, chunks: 1, replaced: null }, 'after a delete, the same version can come back (a restore)')
  t.match(await searchIndex(py, 'narwhal'), [{ documentId: id, version: 2 }])
})

t.test('search finds text from a text file and from a small PDF, ranked', async (t) => {
  const text = docId('txt')
  const doc = docId('pdf')
  await client.upsert(text, 1, 'The wombat digs. A wombat, a wombat and another wombat.')
  await client.upsert(docId('other'), 1, 'one wombat only, among many other words that dilute it a lot')
  for (let i = 0; i < 3; i++) await client.upsert(docId('filler'), 1, `filler text ${i} without the animal`)
  const res = await client.upsert(doc, 1, pdf('Quokka island survey', 'Plain (stream) kookaburra'), { mimeType: 'application/pdf' })
  t.match(res.body.result, { kind: 'pdf', pages: 2, chunks: 1 })
  t.match(await indexedChunks(py, doc), [{ text: 'Quokka island survey second line Plain (stream) kookaburra' }])
  t.match(await searchIndex(py, 'quokka'), [{ documentId: doc, version: 1, chunk: 0, snippet: /\[Quokka\] island/ }], 'from a FlateDecode stream')
  t.match(await searchIndex(py, 'kookaburra'), [{ documentId: doc }], 'from an uncompressed stream')
  t.match(await searchIndex(py, 'second line'), [{ documentId: doc }], 'TJ arrays, several words: all must match')
  const hits = await searchIndex(py, 'WOMBAT')
  t.equal(hits.length, 2)
  t.equal(hits[0]!.documentId, text, 'more occurrences rank first')
  t.ok(hits[0]!.score > hits[1]!.score)
  t.equal((await searchIndex(py, 'wombat', 1)).length, 1, 'limit')
  t.same(await searchIndex(py, '"wombat" OR NEAR('), [], 'query syntax is not interpreted: words only, all of them')
  const bad = await fetch(`${py.base}/index/search?q=%20`)
  t.equal(bad.status, 400)
  t.equal((await fetch(`${py.base}/index/search?q=x&limit=1000`)).status, 400)
})

t.test('the LIKE fallback (no FTS5) answers the same searches', async (t) => {
  const like = await startPython(SECRET, ['--no-fts'])
  t.teardown(like.close)
  const c = ingestClient(like, files)
  const a = docId('like')
  await c.upsert(a, 1, 'Émeu émeu and a cassowary')
  await c.upsert(docId('like'), 1, 'only one ÉMEU here, and far more other words')
  const res = await fetch(`${like.base}/index/search?q=%C3%A9meu`)
  t.equal(res.headers.get('x-index-search'), 'like')
  const hits = await res.json() as Array<{ documentId: string, snippet: string }>
  t.equal(hits.length, 2, 'case folded beyond ASCII')
  t.equal(hits[0]!.documentId, a)
  t.same(await searchIndex(like, 'cass_wary'), [], 'LIKE wildcards in the query are literal')
  t.match(await searchIndex(like, 'cassowary'), [{ documentId: a, version: 1, chunk: 0, snippet: /cassowary/ }])
  t.match(await (await fetch(`${like.base}/health`)).json(), { status: 'ok', search: 'like', documents: 2 })
  t.match(await (await fetch(`${py.base}/health`)).json(), { status: 'ok', search: 'fts5' })
})

t.test('the same Idempotency-Key twice is worked once', async (t) => {
  const id = docId('idem')
  const first = await client.upsert(id, 1, 'idempotent content', { key: `k-${id}` })
  const second = await client.upsert(id, 1, 'idempotent content', { key: `k-${id}` })
  t.same(second.body, first.body, 'the first answer again')
  t.equal(files.hits(`/files/${id}/v1`), 1, 'one download')
  const { received } = await controlPython(py)
  t.same(received.filter((r: { documentId: string }) => r.documentId === id).map((r: { outcome: string }) => r.outcome), ['succeeded', 'replayed'])

  // Two deliveries at once (a retry after a timeout while the first still runs): one download.
  const id2 = docId('idem-concurrent')
  const release = files.hold(`/files/${id2}/v1`)
  const both = [client.upsert(id2, 1, 'concurrent twin', { key: `k-${id2}` }), client.upsert(id2, 1, 'concurrent twin', { key: `k-${id2}` })]
  await eventually(async () => files.hits(`/files/${id2}/v1`) === 1)
  release()
  const [a, b] = await Promise.all(both)
  t.same(a!.body, b!.body)
  t.equal(files.hits(`/files/${id2}/v1`), 1, 'the second waited for the first and got its answer')

  // Async (202 + callback): a redelivery while it runs is 202 again, one download, one callback.
  const id3 = docId('idem-async')
  const hold3 = files.hold(`/files/${id3}/v1`)
  const x = await client.upsert(id3, 1, 'async twin', { key: `k-${id3}`, options: { async: true } })
  const y = await client.upsert(id3, 1, 'async twin', { key: `k-${id3}`, options: { async: true } })
  t.same([x.status, y.status], [202, 202])
  hold3()
  await eventually(async () => files.callbacks.some(c => c.body.ingestionId === `k-${id3}`))
  t.match(files.callbacks.filter(c => c.body.ingestionId === `k-${id3}`), [{ url: `/ingestions/k-${id3}/callback`, body: { status: 'succeeded', result: { version: 1, chunks: 1 } } }])
  const z = await client.upsert(id3, 1, 'async twin', { key: `k-${id3}`, options: { async: true } })
  t.match(z, { status: 200, body: { status: 'succeeded', result: { version: 1 } } }, 'after it finished: its final answer')
  t.equal(files.hits(`/files/${id3}/v1`), 1)
  t.equal(files.callbacks.filter(c => c.body.ingestionId === `k-${id3}`).length, 1)
})

t.test('old senders: no operation means upsert, no version means version 1', async (t) => {
  const id = docId('legacy')
  const res = await client.upsert(id, undefined, 'legacy sender text', { operation: undefined })
  t.match(res.body, { status: 'succeeded', result: { version: 1, chunks: 1 } })
  t.match(await indexedDocument(py, id), { version: 1 })
})

t.test('the image copies every module of the service', async (t) => {
  const dir = join(ROOT, 'examples/ingestion-service')
  const modules = readdirSync(dir).filter(f => f.endsWith('.py') && !f.startsWith('test_')).sort()
  const copied = [...readFileSync(join(dir, 'Dockerfile'), 'utf8').matchAll(/^COPY\s+(.+)\s+\S+$/gm)].flatMap(m => m[1]!.split(/\s+/)).sort()
  t.same(copied, modules)
})

t.test('the service\'s own unit tests (python3 -m unittest) pass', async (t) => {
  const run = spawnSync('python3', ['-m', 'unittest', 'test_units'], { cwd: join(ROOT, 'examples/ingestion-service'), encoding: 'utf8', timeout: 120000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
  t.equal(run.status, 0, run.stderr)
  t.match(run.stderr, /^OK$/m)
})
