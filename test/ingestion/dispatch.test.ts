import t from 'tap'
import { createHmac } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { buildApp } from '../../src/build.js'
import { testConfig, createUser } from '../helper.js'
import { documents } from '../../drizzle/schema/index.js'
import { createDocument, scriptedBackend, json, waitForStatus, postCallback, openSse, freePort, eventually, serveWithWorkers } from './helpers.js'

// One scripted backend for the whole file: each ingestion's `options.script` says how to answer
// its n-th request ('500', '200', '400', '202', 'hang').
const seen = new Map<string, number>()
// bytes written per ingestion by the endless/huge answers, and the ones whose client hung up
const endless = new Map<string, number>()
const closed = new Set<string>()
const backend = await scriptedBackend(async (req, _n, res) => {
  const id: string = req.body.ingestionId
  const n = (seen.get(id) ?? 0) + 1
  seen.set(id, n)
  const script: string[] = req.body.options?.script ?? ['200']
  const step = script[Math.min(n, script.length) - 1] ?? '200'
  if (step === 'hang') return // never answers: the worker's timeout fires
  if (step === 'endless200' || step === 'huge500') {
    // A 2xx whose body never ends, or a 5xx with a 4 MiB body: written until the client hangs up.
    res.writeHead(step === 'endless200' ? 200 : 500, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let sent = 0
    const limit = step === 'endless200' ? Infinity : 4 * 1024 * 1024
    const more = (): void => {
      while (!res.destroyed && sent < limit) {
        sent += chunk.length
        endless.set(id, sent)
        if (!res.write(chunk)) { res.once('drain', more); return }
      }
      if (!res.destroyed) res.end()
    }
    res.on('close', () => closed.add(id))
    more()
    return
  }
  if (step === 'slow500') await new Promise(resolve => setTimeout(resolve, 300))
  if (step === '200') return json(res, 200, { status: 'succeeded', result: { echo: id, n } })
  if (step === '202') return json(res, 202, { status: 'accepted' })
  json(res, Number(step.replace('slow', '')), { error: `scripted ${step}` })
})
t.teardown(backend.close)

const port = await freePort()
const app = await buildApp(testConfig({
  INGESTION_URL: backend.url,
  INGESTION_MAX_ATTEMPTS: 3,
  INGESTION_BACKOFF_MS: 20,
  INGESTION_TIMEOUT_MS: 400,
  INGESTION_CALLBACK_TIMEOUT_MS: 600,
  PUBLIC_URL: `http://127.0.0.1:${port}`,
}))
await serveWithWorkers(t, app, port, ['ingestion'])

const ed = await createUser(app, 'editor')
const trigger = async (script: string[], docId?: string) => {
  const id = docId ?? (await createDocument(app, ed.id)).id
  const res = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: ed.headers, payload: { pipeline: 'test', options: { script } } })
  t.equal(res.statusCode, 202)
  return res.json().id as string
}
const types = (ing: { events: Array<{ type: string }> }) => ing.events.map(e => e.type)

t.test('500 twice then 200: succeeded after 3 attempts, each recorded; the request is signed per contract', async (t) => {
  const doc = await createDocument(app, ed.id)
  const id = await trigger(['500', '500', '200'], doc.id)
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'succeeded')
  t.equal(ing.attempts, 3)
  t.same(ing.result, { echo: id, n: 3 })
  const attempts = ing.events.filter((e: { type: string }) => e.type === 'attempt')
  t.equal(attempts.length, 3, 'three attempt events')
  t.match(attempts[0].message, /HTTP 500 in \d+ ms/)
  t.match(attempts[2].message, /HTTP 200 in \d+ ms/)
  t.equal(types(ing).filter((x: string) => x === 'retry_scheduled').length, 2)
  t.ok(ing.startedAt && ing.finishedAt)
  t.equal(ing.lastError, null)

  const req = backend.requests.find(r => r.body.ingestionId === id)!
  t.equal(req.headers['idempotency-key'], id)
  t.equal(req.headers['content-type'], 'application/json')
  const ts = req.headers['x-quire-timestamp'] as string
  const expected = 'sha256=' + createHmac('sha256', app.config.INGESTION_SECRET).update(`${ts}\nPOST\n/ingest\n${req.raw.toString()}`).digest('hex')
  t.equal(req.headers['x-quire-signature'], expected, 'HMAC over timestamp, method, path and raw body')
  t.match(req.body, {
    ingestionId: id,
    pipeline: 'test',
    options: { script: ['500', '500', '200'] },
    callbackUrl: `${app.config.PUBLIC_URL}/ingestions/${id}/callback`,
    document: { id: doc.id, title: doc.title, filename: doc.filename, mimeType: doc.mimeType, size: doc.size, sha256: doc.sha256, downloadUrl: String, downloadUrlExpiresAt: String },
  })
  const dl = await fetch(req.body.document.downloadUrl)
  t.equal(dl.status, 200, 'the download URL serves the bytes')
  t.equal(Buffer.from(await dl.arrayBuffer()).length, doc.size)
})

t.test('always 500: failed after the configured attempts', async (t) => {
  const id = await trigger(['500'])
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed')
  t.equal(ing.attempts, 3)
  t.equal(types(ing).filter((x: string) => x === 'attempt').length, 3)
  t.match(ing.lastError, /gave up after 3 attempts: backend answered 500/)
  t.equal(seen.get(id), 3)
})

t.test('400: failed after 1 attempt, no retry', async (t) => {
  const id = await trigger(['400', '200'])
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed')
  t.equal(ing.attempts, 1)
  t.match(ing.lastError, /refused the request with 400/)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(seen.get(id), 1, 'not retried')
})

t.test('timeout: the hanging attempt is abandoned and retried', async (t) => {
  const id = await trigger(['hang', '200'])
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'succeeded')
  t.equal(ing.attempts, 2)
  t.match(ing.events.find((e: { type: string }) => e.type === 'attempt').message, /no answer within 400 ms \(timeout\)/)
  const id2 = await trigger(['hang'])
  const failed = await waitForStatus(app, ed.headers, id2, ['succeeded', 'failed'])
  t.equal(failed.status, 'failed')
  t.match(failed.lastError, /timed out after 400 ms/)
})

t.test('202 and no callback: failed after the callback timeout; 202 with a callback: succeeded', async (t) => {
  const id = await trigger(['202'])
  const running = await waitForStatus(app, ed.headers, id, ['running', 'failed'])
  t.equal(running.status, 'running')
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed')
  t.equal(ing.attempts, 1)
  t.match(ing.lastError, /no callback from the backend within 600 ms/)
  const late = await postCallback(app, id, { status: 'succeeded' })
  t.equal(late.statusCode, 409, 'a callback after the timeout cannot revive it')

  const id2 = await trigger(['202'])
  await eventually(async () => (await app.inject({ method: 'GET', url: `/ingestions/${id2}`, headers: ed.headers })).json().events.some((e: { type: string }) => e.type === 'attempt'))
  const cb = await postCallback(app, id2, { ingestionId: id2, status: 'succeeded', result: { pages: 2 } })
  t.same(cb.json(), { id: id2, status: 'succeeded', changed: true })
  await new Promise(resolve => setTimeout(resolve, 800))
  const done = (await app.inject({ method: 'GET', url: `/ingestions/${id2}`, headers: ed.headers })).json()
  t.equal(done.status, 'succeeded', 'the callback timer does not fail a finished ingestion')
  t.same(done.result, { pages: 2 })
})

t.test('cancel during backoff stops further attempts; retry starts a new cycle', async (t) => {
  const doc = await createDocument(app, ed.id)
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: { options: { script: ['slow500', '500'] } } })
  const id = res.json().id
  await eventually(async () => seen.get(id) === 1, 5000, 10)
  // cancelled while attempt 1 is in flight: its 500 must not lead to attempt 2
  t.equal((await app.inject({ method: 'POST', url: `/ingestions/${id}/cancel`, headers: ed.headers })).statusCode, 200)
  await new Promise(resolve => setTimeout(resolve, 700))
  t.equal(seen.get(id), 1, 'no further attempts')
  t.equal((await app.inject({ method: 'GET', url: `/ingestions/${id}`, headers: ed.headers })).json().status, 'cancelled')
  const retry = await eventually(async () => {
    const r = await app.inject({ method: 'POST', url: `/ingestions/${id}/retry`, headers: ed.headers })
    return r.statusCode === 202 ? r : null
  })
  t.equal(retry.json().status, 'queued')
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed', 'the new cycle ran (and failed: always 500)')
  t.ok(ing.events.some((e: { type: string }) => e.type === 'retried'))
})

t.test('a document deleted meanwhile fails its ingestion with a clear error', async (t) => {
  const doc = await createDocument(app, ed.id)
  const id = await trigger(['slow500', '200'], doc.id)
  await eventually(async () => seen.get(id) === 1, 5000, 10)
  await app.db.update(documents).set({ deletedAt: new Date() }).where(eq(documents.id, doc.id))
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed')
  t.match(ing.lastError, /document was deleted/)
  t.equal(seen.get(id), 1, 'nothing sent for a deleted document')
})

t.test('SSE: a client receives status changes until the final one', async (t) => {
  const id = await trigger(['500', '200'])
  const sse = openSse(`http://127.0.0.1:${port}`, id, ed.headers)
  t.equal(await sse.status, 200)
  const messages = await sse.done
  t.equal(messages[0]!.event, 'status')
  t.equal(messages[0]!.data.type, 'snapshot')
  t.equal(messages.at(-1)!.data.status, 'succeeded', 'ends with the final status')
  const statuses = messages.map(m => m.data.status)
  t.ok(statuses.includes('running'), 'saw running')
  t.ok(messages.some(m => m.data.type === 'attempt'), 'saw the attempts')

  // a finished ingestion: the snapshot only, then the stream ends
  const again = await openSse(`http://127.0.0.1:${port}`, id, ed.headers).done
  t.equal(again.length, 1)
  t.equal(again[0]!.data.status, 'succeeded')
  // not visible: 404 before any streaming
  const stranger = await createUser(app, 'editor')
  const hidden = openSse(`http://127.0.0.1:${port}`, id, stranger.headers)
  t.equal(await hidden.status, 404)
  await hidden.done
})

t.test('a huge or endless answer body: read up to BODY_LIMIT, then the connection is dropped', async (t) => {
  const started = Date.now()
  const id = await trigger(['endless200', '200'])
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(ing.status, 'failed', 'a 2xx we could not read whole is a permanent failure')
  t.equal(ing.attempts, 1, 'not retried')
  t.match(ing.lastError, /backend answered 200 with a body larger than 1048576 bytes \(BODY_LIMIT\)/)
  t.match(ing.events.find((e: { type: string }) => e.type === 'attempt').message, /HTTP 200 in \d+ ms: answer body over 1048576 bytes, read aborted/)
  t.ok(Date.now() - started < 5000, 'well before any timeout')
  await eventually(async () => closed.has(id), 5000, 20)
  t.ok(endless.get(id)! < 64 * 1024 * 1024, `the backend stopped after ${endless.get(id)} bytes`)
  // a 5xx with a huge body is still a 5xx: retried, its error a snippet of what was read
  const id2 = await trigger(['huge500', '200'])
  const ok = await waitForStatus(app, ed.headers, id2, ['succeeded', 'failed'])
  t.equal(ok.status, 'succeeded')
  t.equal(ok.attempts, 2)
  t.match(ok.events.find((e: { type: string }) => e.type === 'attempt').message, /HTTP 500/)
})
