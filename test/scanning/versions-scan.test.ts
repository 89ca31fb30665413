// issue 24, malware scanning of new content versions: with CLAMD_URL set a new version (multipart
// or pre-signed) starts `scanning` and goes through the same document-scan job as a new document;
// found infected it is never served, restored or ingested, also once a newer version is current.
import t, { type Test } from 'tap'
import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { documentVersions } from '../../drizzle/schema/index.js'
import type { Config } from '../../src/config.js'
import { startWorkers } from '../../src/worker-runner.js'
import { EICAR, startClamd, type RunningClamd } from '../../scripts/clamd.mjs'
import { assertErrorShape, createUser, type TestUser } from '../helper.js'
import { addVersion, buildWith, upload } from '../documents/helpers.js'
import { eventually, scriptedBackend, json } from '../ingestion/helpers.js'

/** Ports reserved for the scanning tests: 7310-7319 (this file: 7313). */
const PORT = 7313

let clamd: RunningClamd | null = null
t.before(async () => { clamd = await startClamd({ port: PORT }) })
t.teardown(async () => { await clamd?.stop() })

interface Setup { app: FastifyInstance, ed: TestUser, backend: Awaited<ReturnType<typeof scriptedBackend>>, port: number }

async function setup (t: Test, driver: 'local' | 's3', overrides: Partial<Config> = {}): Promise<Setup> {
  const backend = await scriptedBackend((_req, _n, res) => json(res, 200, { status: 'succeeded', result: {} }))
  t.teardown(backend.close)
  const app = await buildWith(t, driver, { CLAMD_URL: `tcp://127.0.0.1:${PORT}`, SCAN_RETRY_MS: 50, SCAN_RETRY_MAX_MS: 400, INGESTION_URL: backend.url, ...overrides })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const running = await startWorkers(app, ['media', 'ingestion'])
  t.teardown(async () => await running.close())
  const { port } = app.server.address() as { port: number }
  return { app, ed: await createUser(app, 'editor'), backend, port }
}

/**
 * The scans wait while the media queue is paused (BullMQ, this app's prefix only): what a new
 * version looks like before its scan is then checked without racing a fast clamd.
 */
const holdScans = async (s: Setup): Promise<void> => { await s.app.queues.media.pause() }
const releaseScans = async (s: Setup): Promise<void> => { await s.app.queues.media.resume() }

const getDoc = async (s: Setup, id: string) => (await s.app.inject({ url: `/documents/${id}`, headers: s.ed.headers })).json()
const statusOf = async (s: Setup, id: string, wanted: string) => await eventually(async () => {
  const doc = await getDoc(s, id)
  return doc.status === wanted ? doc : null
}, 60_000)
const versionScan = async (s: Setup, id: string, n: number) => (await s.app.db.select({ scan: documentVersions.scanStatus, key: documentVersions.storageKey }).from(documentVersions)
  .where(and(eq(documentVersions.documentId, id), eq(documentVersions.number, n))))[0]

/** A new version by pre-signed upload: start, PUT to the ticket's URL, complete. */
async function presignedVersion (s: Setup, id: string, content: Buffer) {
  const start = await s.app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: s.ed.headers, payload: { filename: 'v.txt', mimeType: 'text/plain', size: content.length } })
  if (start.statusCode !== 201) throw new Error(start.body)
  const ticket = start.json() as { uploadId: string, url: string, headers: Record<string, string> }
  const url = ticket.url.startsWith(s.app.config.PUBLIC_URL) ? ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${s.port}`) : ticket.url
  const put = await fetch(url, { method: 'PUT', headers: ticket.headers, body: content })
  if (put.status !== 200) throw new Error(`PUT ${put.status}`)
  return await s.app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: s.ed.headers, payload: {} })
}

/** Version n's bytes are refused everywhere with 403 document_infected. */
async function assertVersionRefused (t: Test, s: Setup, id: string, n: number, current: boolean): Promise<void> {
  assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/versions/${n}/content`, headers: s.ed.headers }), 403, 'document_infected')
  assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/versions/${n}/content?redirect=true`, headers: s.ed.headers }), 403, 'document_infected')
  const restore = await s.app.inject({ method: 'POST', url: `/documents/${id}/versions/${n}/restore`, headers: s.ed.headers })
  // The current content already: nothing to copy (200); an older infected version is not copied back.
  if (current) t.equal(restore.statusCode, 200, restore.body)
  else assertErrorShape(t, restore, 403, 'document_infected')
  if (current) {
    assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/content`, headers: s.ed.headers }), 403, 'document_infected')
    assertErrorShape(t, await s.app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: s.ed.headers, payload: {} }), 403, 'document_infected')
  }
  if (s.app.storage.driver === 'local') {
    const key = (await versionScan(s, id, n))!.key
    const signed = await s.app.storage.presignGet(key, { expiresIn: 60 })
    const res = await fetch(signed.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${s.port}`))
    t.equal(res.status, 403, 'a signed storage URL of the version is refused')
  }
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: EICAR as a new version, by multipart and by pre-signed upload, ends infected; never served, restored or ingested`, async (t) => {
    const s = await setup(t, driver)
    const first = await upload(s.app, s.ed.headers, { filename: 'notes.txt', data: 'clean notes, version 1\n' })
    t.equal(first.statusCode, 201, first.body)
    const id = first.json().id as string
    await statusOf(s, id, 'ready')
    // In the index: a new clean version is re-ingested (AUTO_REINGEST), an infected one never.
    t.equal((await s.app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: s.ed.headers, payload: {} })).statusCode, 202)
    await eventually(async () => (await getDoc(s, id)).index.state === 'indexed', 60_000)
    t.equal(s.backend.requests.length, 1)

    await holdScans(s)
    const viaMultipart = await addVersion(s.app, s.ed, id, EICAR)
    t.equal(viaMultipart.statusCode, 201, viaMultipart.body)
    t.equal(viaMultipart.json().number, 2)
    t.equal((await getDoc(s, id)).status, 'scanning', 'the new version waits for its scan')
    assertErrorShape(t, await s.app.inject({ url: `/documents/${id}/versions/2/content`, headers: s.ed.headers }), 409, 'document_scanning')
    await releaseScans(s)
    await statusOf(s, id, 'infected')
    t.equal((await versionScan(s, id, 2))?.scan, 'infected')
    await assertVersionRefused(t, s, id, 2, true)

    // A clean version 3 becomes current: scanned, ready, re-ingested; version 2 stays refused.
    await holdScans(s)
    const clean = await addVersion(s.app, s.ed, id, 'clean notes, version 3\n')
    t.equal(clean.statusCode, 201, clean.body)
    t.equal((await getDoc(s, id)).status, 'scanning')
    await releaseScans(s)
    await statusOf(s, id, 'ready')
    t.equal((await versionScan(s, id, 3))?.scan, 'clean')
    t.equal((await s.app.inject({ url: `/documents/${id}/content`, headers: s.ed.headers })).body, 'clean notes, version 3\n')
    await assertVersionRefused(t, s, id, 2, false)
    await eventually(async () => s.backend.requests.length === 2, 60_000)

    // The same file again, by pre-signed upload: version 4, infected; then a clean version 5.
    await holdScans(s)
    const viaUrl = await presignedVersion(s, id, Buffer.from(EICAR))
    t.equal(viaUrl.statusCode, 201, viaUrl.body)
    t.equal(viaUrl.json().number, 4)
    t.equal((await getDoc(s, id)).status, 'scanning')
    await releaseScans(s)
    await statusOf(s, id, 'infected')
    t.equal((await versionScan(s, id, 4))?.scan, 'infected')
    await assertVersionRefused(t, s, id, 4, true)
    t.equal((await addVersion(s.app, s.ed, id, 'clean notes, version 5\n')).statusCode, 201)
    await statusOf(s, id, 'ready')
    await assertVersionRefused(t, s, id, 2, false)
    await assertVersionRefused(t, s, id, 4, false)
    await eventually(async () => s.backend.requests.length === 3, 60_000)
    const sent = s.backend.requests.map(r => (r.body as { document: { version: number } }).document.version)
    t.same(sent, [1, 3, 5], 'only the clean versions were ever sent to the backend')
    t.equal((await s.app.inject({ url: `/documents/${id}/versions/1/content`, headers: s.ed.headers })).statusCode, 200, 'a clean older version is served')
  })
}
