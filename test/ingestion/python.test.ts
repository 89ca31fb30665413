import t from 'tap'
import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/build.js'
import { testConfig, createUser } from '../helper.js'
import { createDocument, startPython, waitForStatus, freePort, eventually, indexedDocument, searchIndex, serveWithWorkers } from './helpers.js'
import { signedHeaders, verifySignature } from '../../src/domain/ingestion-signing.js'

// End to end: the real Python reference service as a child process, a real worker in-process and
// the API on a real port, so the service downloads through the signed URL and calls back.
const config = testConfig({ INGESTION_BACKOFF_MS: 50, INGESTION_TIMEOUT_MS: 5000 })
const py = await startPython(config.INGESTION_SECRET, ['--async-threshold', '2000'])
t.teardown(py.close)
const port = await freePort()
const app = await buildApp({ ...config, INGESTION_URL: py.url, PUBLIC_URL: `http://127.0.0.1:${port}` })
await serveWithWorkers(t, app, port, ['ingestion'])
const ed = await createUser(app, 'editor')

t.test('small text file: answered synchronously with real counts', async (t) => {
  const doc = await createDocument(app, ed.id, { content: 'one two three\nfour five\n' })
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: { pipeline: 'text' } })
  t.equal(res.statusCode, 202)
  const ing = await waitForStatus(app, ed.headers, res.json().id, ['succeeded', 'failed'])
  t.equal(ing.status, 'succeeded', ing.lastError ?? '')
  t.match(ing.result, { bytes: doc.size, sha256: doc.sha256, sha256Verified: true, kind: 'text', lines: 2, words: 5, chars: 24 })
  t.equal(ing.attempts, 1)
  t.match(ing.events.find((e: { type: string }) => e.type === 'attempt').message, /HTTP 200/)
  t.match(ing.result, { chunks: 1, version: Number, pipelineVersion: 'reference-1' })
  t.match(await indexedDocument(py, doc.id), { id: doc.id, version: ing.result.version, chunks: 1, pipelineVersion: 'reference-1' }, 'the service indexed it')
  t.match(await searchIndex(py, 'four'), [{ documentId: doc.id, snippet: /\[four\] five/ }])
})

t.test('large file: 202, then a signed callback finishes it', async (t) => {
  const pages = Array.from({ length: 3 }, (_, i) => `${i + 3} 0 obj << /Type /Page /Parent 2 0 R >> endobj\n`).join('')
  const pdf = Buffer.from(`%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Count 3 >> endobj\n${pages}${'%'.repeat(3000)}\n%%EOF\n`)
  const doc = await createDocument(app, ed.id, { content: pdf, filename: 'big.pdf', mimeType: 'application/pdf' })
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  const ing = await waitForStatus(app, ed.headers, res.json().id, ['succeeded', 'failed'])
  t.equal(ing.status, 'succeeded', ing.lastError ?? '')
  t.match(ing.events.find((e: { type: string }) => e.type === 'attempt').message, /HTTP 202/)
  t.match(ing.events.at(-1), { type: 'succeeded', message: 'callback: succeeded' })
  t.match(ing.result, { kind: 'pdf', pages: 3, bytes: pdf.length, sha256Verified: true, chunks: 0 })
  t.match(await indexedDocument(py, doc.id), { chunks: 0 }, 'held, with no text')
})

t.test('options.async forces the callback path; bulk trigger', async (t) => {
  const docs = await Promise.all(['a b c', 'd e', 'f'].map(async c => await createDocument(app, ed.id, { content: c })))
  const res = await app.inject({ method: 'POST', url: '/ingestions', headers: ed.headers, payload: { documentIds: docs.map(d => d.id), options: { async: true } } })
  t.equal(res.statusCode, 202)
  const items = res.json().items as Array<{ id: string }>
  t.equal(items.length, 3)
  const done = await Promise.all(items.map(async i => await waitForStatus(app, ed.headers, i.id, ['succeeded', 'failed'])))
  t.same(done.map(d => d.status), ['succeeded', 'succeeded', 'succeeded'])
  t.same(done.map(d => d.result.words), [3, 2, 1])
  t.ok(done.every(d => d.events.some((e: { message: string }) => /HTTP 202/.test(e.message))))
})

t.test('a sha256 mismatch is a permanent failure (422, no retry)', async (t) => {
  const doc = await createDocument(app, ed.id, { content: 'tampered?' })
  const { documents } = await import('../../drizzle/schema/index.js')
  const { eq } = await import('drizzle-orm')
  await app.db.update(documents).set({ sha256: '0'.repeat(64) }).where(eq(documents.id, doc.id))
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  const ing = await waitForStatus(app, ed.headers, res.json().id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed')
  t.equal(ing.attempts, 1)
  t.match(ing.lastError, /422.*sha256 mismatch/)
})

t.test('contract: requests to the service are signed over timestamp, method, path and body', async (t) => {
  const raw = JSON.stringify({ ingestionId: 'x' })
  const path = new URL(py.url).pathname
  const send = async (headers: Record<string, string>) => await fetch(py.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw })
  const good = await send(signedHeaders(config.INGESTION_SECRET, { method: 'POST', path }, raw))
  t.equal(good.status, 400, 'authentic (then refused as an invalid payload)')
  t.equal((await send(signedHeaders(config.INGESTION_SECRET, { method: 'POST', path: '/elsewhere' }, raw))).status, 401, 'signed for another path')
  t.equal((await send(signedHeaders(config.INGESTION_SECRET, { method: 'PUT', path }, raw))).status, 401, 'signed for another method')
  const ts = String(Math.floor(Date.now() / 1000))
  const legacy = 'sha256=' + createHmac('sha256', config.INGESTION_SECRET).update(`${ts}.${raw}`).digest('hex')
  t.equal((await send({ 'x-quire-timestamp': ts, 'x-quire-signature': legacy })).status, 401, 'the old "<timestamp>.<body>" scheme')
})

t.test('contract: the service signs its callback for the path (and query) of callbackUrl', async (t) => {
  const got: Array<{ url: string, headers: Record<string, string | string[] | undefined>, raw: Buffer }> = []
  const quire = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.method === 'GET') { res.writeHead(404).end(); return } // the download: refused, so a "failed" callback comes
      got.push({ url: req.url!, headers: req.headers, raw: Buffer.concat(chunks) })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  quire.listen(0, '127.0.0.1')
  await once(quire, 'listening')
  t.teardown(() => { quire.close() })
  const base = `http://127.0.0.1:${(quire.address() as AddressInfo).port}`
  const payload = JSON.stringify({
    ingestionId: 'cb-test',
    pipeline: 'default',
    options: { async: true },
    callbackUrl: `${base}/api/ingestions/cb-test/callback?tenant=a`,
    document: { id: 'd', downloadUrl: `${base}/dl`, size: 1, sha256: '0'.repeat(64) },
  })
  const res = await fetch(py.url, { method: 'POST', headers: { 'content-type': 'application/json', ...signedHeaders(config.INGESTION_SECRET, { method: 'POST', path: new URL(py.url).pathname }, payload) }, body: payload })
  t.equal(res.status, 202)
  await eventually(async () => got.length > 0, 10000)
  const cb = got[0]!
  t.equal(cb.url, '/api/ingestions/cb-test/callback?tenant=a')
  t.match(JSON.parse(cb.raw.toString()), { ingestionId: 'cb-test', status: 'failed', error: /download refused with HTTP 404/ })
  const target = { method: 'POST', path: '/api/ingestions/cb-test/callback?tenant=a' }
  const check = verifySignature(config.INGESTION_SECRET, cb.headers, target, cb.raw)
  t.ok(check.ok, 'signed for its own URL')
  t.notOk(verifySignature(config.INGESTION_SECRET, cb.headers, { method: 'POST', path: '/api/ingestions/other/callback?tenant=a' }, cb.raw).ok, 'and for no other')
})
