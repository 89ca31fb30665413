import t from 'tap'
import { buildApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { testConfig, createUser } from '../helper.js'
import { createDocument, startPython, waitForStatus, freePort } from './helpers.js'

// End to end: the real Python reference service as a child process, a real worker in-process and
// the API on a real port, so the service downloads through the signed URL and calls back.
const config = testConfig({ INGESTION_BACKOFF_MS: 50, INGESTION_TIMEOUT_MS: 5000 })
const py = await startPython(config.INGESTION_SECRET, ['--async-threshold', '2000'])
t.teardown(py.close)
const port = await freePort()
const app = await buildApp({ ...config, INGESTION_URL: py.url, PUBLIC_URL: `http://127.0.0.1:${port}` })
await app.listen({ port, host: '127.0.0.1' })
const workers = await startWorkers(app, ['ingestion'])
t.teardown(async () => { await workers.close(); await app.close() })
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
  t.match(ing.result, { kind: 'pdf', pages: 3, bytes: pdf.length, sha256Verified: true })
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
