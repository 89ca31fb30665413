// issue 24, malware scanning: with CLAMD_URL set every new object is scanned by a real clamd
// (scripts/clamd.mjs, EICAR test signature) in the worker before the document is served or ingested.
import t, { type Test } from 'tap'
import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { createHash, randomBytes } from 'node:crypto'
import { auditEvents, documents } from '../../drizzle/schema/index.js'
import type { Config } from '../../src/config.js'
import { startWorkers } from '../../src/worker-runner.js'
import { EICAR, startClamd, type RunningClamd } from '../../scripts/clamd.mjs'
import { assertErrorShape, createUser, type TestUser } from '../helper.js'
import { buildWith, PNG_RED, upload } from '../documents/helpers.js'
import { eventually, scriptedBackend, json } from '../ingestion/helpers.js'
import { metadataHeader } from '../uploads/tus-helpers.js'

/** Ports reserved for the scanning tests: 7310-7319 (this file: 7310 for clamd, 7319 where none listens). */
const PORT = 7310
const NOBODY_PORT = 7319
const SIGNATURE = 'Eicar-Test-Signature.UNOFFICIAL'

let clamd: RunningClamd | null = null
const startScanner = async (): Promise<void> => { clamd = await startClamd({ port: PORT }) }
const stopScanner = async (): Promise<void> => { await clamd?.stop(); clamd = null }
t.before(startScanner)
t.teardown(stopScanner)

interface Setup { app: FastifyInstance, ed: TestUser, admin: TestUser, backend: Awaited<ReturnType<typeof scriptedBackend>>, port: number }

async function setup (t: Test, driver: 'local' | 's3', overrides: Partial<Config> = {}, queues: Array<'media' | 'ingestion'> = ['media', 'ingestion']): Promise<Setup> {
  const backend = await scriptedBackend((_req, _n, res) => json(res, 200, { status: 'succeeded', result: {} }))
  t.teardown(backend.close)
  const app = await buildWith(t, driver, { CLAMD_URL: `tcp://127.0.0.1:${PORT}`, SCAN_RETRY_MS: 50, SCAN_RETRY_MAX_MS: 400, SCAN_TIMEOUT_MS: 10_000, INGESTION_URL: backend.url, ...overrides })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const running = await startWorkers(app, queues)
  t.teardown(async () => await running.close())
  const { port } = app.server.address() as { port: number }
  return { app, ed: await createUser(app, 'editor'), admin: await createUser(app, 'admin'), backend, port }
}

const getDoc = async (s: Setup, id: string) => (await s.app.inject({ url: `/documents/${id}`, headers: s.ed.headers })).json()
const statusOf = async (s: Setup, id: string, wanted: string, ms = 30_000) => await eventually(async () => {
  const doc = await getDoc(s, id)
  return doc.status === wanted ? doc : null
}, ms)

/** Pre-signed upload end to end (the ticket's URL, local or S3), answering the completed document. */
async function presigned (s: Setup, filename: string, content: Buffer) {
  const start = await s.app.inject({ method: 'POST', url: '/uploads', headers: s.ed.headers, payload: { filename, mimeType: 'text/plain', size: content.length } })
  const ticket = start.json() as { uploadId: string, url: string, headers: Record<string, string> }
  const url = ticket.url.startsWith(s.app.config.PUBLIC_URL) ? ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${s.port}`) : ticket.url
  const put = await fetch(url, { method: 'PUT', headers: ticket.headers, body: content })
  if (put.status !== 200) throw new Error(`PUT ${put.status}`)
  return await s.app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: s.ed.headers, payload: {} })
}

/** Every way to the bytes and to ingestion is refused with `status`/`code`; nothing reaches the backend. */
async function assertRefused (t: Test, s: Setup, id: string, status: number, code: string): Promise<void> {
  assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/content`, headers: s.ed.headers }), status, code)
  assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/content?redirect=true`, headers: s.ed.headers }), status, code)
  assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/content`, headers: s.admin.headers }), status, code)
  assertErrorShape(t, await s.app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: s.ed.headers, payload: {} }), status, code)
  assertErrorShape(t, await s.app.inject({ method: 'POST', url: '/ingestions', headers: s.ed.headers, payload: { documentIds: [id] } }), status, code)
  if (s.app.storage.driver === 'local') {
    // A URL signed for the object (as the dispatch job would) is not served either.
    const signed = await s.app.storage.presignGet(`documents/${id}/original`, { expiresIn: 60 })
    const res = await fetch(signed.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${s.port}`))
    t.equal(res.status, status, 'signed storage URL refused')
    t.equal((await res.json() as { code: string }).code, code)
  }
  t.equal(s.backend.requests.length, 0, 'nothing was sent to the ingestion backend')
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: EICAR by multipart and by pre-signed upload ends infected, never served or ingested; admins purge it`, async (t) => {
    const s = await setup(t, driver, {}, ['media'])
    const viaMultipart = await upload(s.app, s.ed.headers, { filename: 'eicar.txt', data: EICAR })
    t.equal(viaMultipart.statusCode, 201, viaMultipart.body)
    t.equal(viaMultipart.json().status, 'scanning', 'a new document waits for its scan')
    const viaUrl = await presigned(s, 'eicar2.txt', Buffer.from(EICAR))
    t.equal(viaUrl.statusCode, 201, viaUrl.body)
    t.equal(viaUrl.json().status, 'scanning')

    const ids = [viaMultipart.json().id as string, viaUrl.json().id as string]
    if (driver === 'local') {
      // tus (resumable): the last PATCH completes through the same path. (On S3 @tus/s3-store needs
      // ListParts, which the suite's plain emulator lacks: test/uploads has the S3 tus tests.)
      const tus = { 'tus-resumable': '1.0.0' }
      const created = await s.app.inject({ method: 'POST', url: '/uploads/tus', headers: { ...s.ed.headers, ...tus, 'upload-length': String(EICAR.length), 'upload-metadata': metadataHeader({ filename: 'eicar3.txt', filetype: 'text/plain' }) } })
      t.equal(created.statusCode, 201, created.body)
      const patched = await s.app.inject({ method: 'PATCH', url: new URL(String(created.headers.location)).pathname, headers: { ...s.ed.headers, ...tus, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, payload: EICAR })
      t.equal(patched.statusCode, 204, patched.body)
      const viaTus = String(patched.headers['quire-document-id'])
      // Read after the answer: the media worker may have scanned it already (tus' answer carries no body).
      t.match((await getDoc(s, viaTus)).status, /^(scanning|infected)$/, 'a tus upload waits for its scan too (never ready before it)')
      ids.push(viaTus)
    }

    for (const id of ids) {
      const doc = await statusOf(s, id, 'infected')
      t.equal(doc.error, SIGNATURE, 'the signature is shown')
      await assertRefused(t, s, id, 403, 'document_infected')
      const [audit] = await s.app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'document.infected'), eq(auditEvents.subject, `document:${id}`)))
      t.match(audit?.payload, { signature: SIGNATURE }, 'audited with the signature')
      const listed = (await s.app.inject({ url: '/documents?status=infected', headers: s.ed.headers })).json()
      t.ok(listed.items.some((d: { id: string }) => d.id === id), 'listed by ?status=infected')
    }

    // The dispatch job checks again: an ingestion queued while the document looked ready (a race)
    // fails without a request to the backend.
    const id = viaMultipart.json().id as string
    await s.app.db.update(documents).set({ status: 'ready' }).where(eq(documents.id, id))
    const queued = await s.app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: s.ed.headers, payload: {} })
    t.equal(queued.statusCode, 202, queued.body)
    await s.app.db.update(documents).set({ status: 'infected' }).where(eq(documents.id, id))
    const ingestionWorker = await startWorkers(s.app, ['ingestion'])
    t.teardown(async () => await ingestionWorker.close())
    const failed = await eventually(async () => {
      const ing = (await s.app.inject({ url: `/ingestions/${queued.json().id as string}`, headers: s.ed.headers })).json()
      return ing.status === 'failed' ? ing : null
    })
    t.match(failed.lastError, /infected/)
    t.equal(s.backend.requests.length, 0, 'the backend was never called')

    // Admins purge (no trash step for documents:manage); the object goes with it.
    const purge = await s.app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: s.admin.headers })
    t.equal(purge.statusCode, 204, purge.body)
    assertErrorShape(t, await s.app.inject({ url: `/documents/${id}`, headers: s.ed.headers }), 404, 'not_found')
    const deletions = await s.app.queues.cleanup.getJobs(['waiting', 'delayed'])
    t.ok(deletions.some(j => j.name === 'delete-objects' && (j.data as { keys: string[] }).keys.includes(`documents/${id}/original`)), 'its object is queued for deletion')
  })

  t.test(`${driver}: clean files (text, a multi-MB file, an image) are scanned, then ready and downloadable`, async (t) => {
    const s = await setup(t, driver)
    const text = await upload(s.app, s.ed.headers, { filename: 'hello.txt', data: 'hello, clean world\n' })
    t.equal(text.json().status, 'scanning')
    await statusOf(s, text.json().id, 'ready')
    const dl = await s.app.inject({ url: `/documents/${text.json().id as string}/content`, headers: s.ed.headers })
    t.equal(dl.statusCode, 200)
    t.equal(dl.body, 'hello, clean world\n')

    const big = randomBytes(12 * 1024 * 1024)
    const bigUp = await upload(s.app, s.ed.headers, { filename: 'big.bin', data: big })
    t.equal(bigUp.statusCode, 201, bigUp.body)
    await statusOf(s, bigUp.json().id, 'ready')
    const bigDl = await s.app.inject({ url: `/documents/${bigUp.json().id as string}/content`, headers: s.ed.headers })
    t.equal(createHash('sha256').update(bigDl.rawPayload).digest('hex'), createHash('sha256').update(big).digest('hex'), 'a 12 MiB file scans and downloads whole')

    const png = await upload(s.app, s.ed.headers, { filename: 'red.png', data: PNG_RED })
    t.equal(png.json().status, 'scanning')
    const ready = await statusOf(s, png.json().id, 'ready')
    t.same(ready.thumbnail, { width: 1, height: 1 }, 'the thumbnail follows the scan')

    const trigger = await s.app.inject({ method: 'POST', url: `/documents/${text.json().id as string}/ingestions`, headers: s.ed.headers, payload: {} })
    t.equal(trigger.statusCode, 202, trigger.body)
    await eventually(async () => s.backend.requests.length === 1)
  })

  t.test(`${driver}: clamd down: the document waits in scanning (refused), and is scanned once clamd is back`, async (t) => {
    const s = await setup(t, driver)
    await stopScanner()
    t.teardown(async () => { if (clamd === null) await startScanner() })
    const up = await upload(s.app, s.ed.headers, { filename: 'waiting.txt', data: 'patience\n' })
    const id = up.json().id as string
    // Several attempts fail while clamd is away; the document stays scanning.
    await eventually(async () => ((await s.app.queues.media.getJob(`scan-${id}`))?.attemptsMade ?? 0) >= 3, 30_000)
    t.equal((await getDoc(s, id)).status, 'scanning')
    await assertRefused(t, s, id, 409, 'document_scanning')
    await startScanner()
    await statusOf(s, id, 'ready')
    t.equal((await s.app.inject({ url: `/documents/${id}/content`, headers: s.ed.headers })).body, 'patience\n')
  })
}

t.test('SCAN_FAIL_OPEN=true: with clamd unreachable the document becomes ready, audited as unscanned', async (t) => {
  const s = await setup(t, 'local', { CLAMD_URL: `tcp://127.0.0.1:${NOBODY_PORT}`, SCAN_FAIL_OPEN: true })
  const up = await upload(s.app, s.ed.headers, { filename: 'open.txt', data: 'let through\n' })
  t.equal(up.json().status, 'scanning')
  const id = up.json().id as string
  await statusOf(s, id, 'ready')
  const [audit] = await s.app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'document.scan_skipped'), eq(auditEvents.subject, `document:${id}`)))
  t.match(audit?.payload, { failOpen: true, reason: /7319/ })
  t.equal((await s.app.inject({ url: `/documents/${id}/content`, headers: s.ed.headers })).statusCode, 200)
})

t.test('without CLAMD_URL nothing changes: documents are ready at once', async (t) => {
  const s = await setup(t, 'local', { CLAMD_URL: '' })
  const up = await upload(s.app, s.ed.headers, { filename: 'eicar.txt', data: EICAR })
  t.equal(up.json().status, 'ready')
})
