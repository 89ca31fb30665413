import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { eq } from 'drizzle-orm'
import { createUser, testConfig } from '../helper.js'
import { processEnv } from '../helpers/processes.js'
import { documents, documentVersions, ingestions } from '../../drizzle/schema/index.js'
import { addVersion, buildWith, objects, upload } from '../documents/helpers.js'
import { startPython, indexedDocument, searchIndex, controlPython, eventually, waitForStatus, freePort, randomKey, ROOT } from './helpers.js'
import { indexEventually } from './index-helpers.js'

// The index lifecycle of index-python.test.ts (v1 -> v2 -> v3, trash, restore, purge) with faults:
// the worker process SIGKILLed while the real Python reference service works an upsert and while it
// works a delete, and the service answering 5xx for a while after each kill (POST /_control
// failForMs). The end state must be the one a run without faults reaches, checked through the
// service's own /index API, on local storage and on S3; what was sent twice is only ever the same
// Idempotency-Key again (answered from the service's memory, never worked a second time).
t.setTimeout(600_000)
const py = await startPython(testConfig().INGESTION_SECRET)
t.teardown(py.close)

interface Received { idempotencyKey: string, documentId: string, operation: string, version: number, overlapped: boolean, outcome: string }
const receivedFor = async (id: string): Promise<Received[]> =>
  ((await controlPython(py)).received as Received[]).filter(r => r.documentId === id)

/** The worker entry point (src/worker.ts) as a child process with the app's config; SIGKILLed at the end if still alive. */
function workerProcesses (t: Test, app: FastifyInstance) {
  const children: ChildProcess[] = []
  t.teardown(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') })
  // processEnv: the app's world (database, Redis prefix, secrets, storage) with the recovery and
  // thumbnail sweeps off, as for every other worker a test starts: the suite's files share one
  // database, and the thumbnail sweep here queued other files' documents left in processing again
  // (for a worker whose storage does not hold their objects).
  const env = processEnv(app.config, {
    PUBLIC_URL: app.config.PUBLIC_URL,
    INGESTION_TIMEOUT_MS: '60000',
    INGESTION_BACKOFF_MS: '50',
    INGESTION_MAX_ATTEMPTS: '12',
    // Short enough that a killed worker's job is taken again soon, long enough that a loaded
    // machine does not stall a live worker's job (a second stall fails a BullMQ job for good).
    WORKER_LOCK_MS: '4000',
  })
  return async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, ['--import=tsx', 'src/worker.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let out = ''
    child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start: ${out}`)), 90_000)
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('worker started')) { clearTimeout(timer); resolve() }
      })
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`worker exited ${code}: ${out}`)) })
    })
    child.removeAllListeners('exit')
    return child
  }
}

const kill = async (child: ChildProcess): Promise<void> => {
  child.kill('SIGKILL')
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: the worker SIGKILLed mid-upsert and mid-delete, the backend answering 5xx for a while: the same end state`, async (t) => {
    const port = await freePort()
    const app = await buildWith(t, driver, { INGESTION_URL: py.url, PUBLIC_URL: `http://127.0.0.1:${port}` })
    await app.listen({ port, host: '127.0.0.1' })
    t.teardown(async () => await controlPython(py, { delayMs: 0, deleteDelayMs: null, failForMs: 0, failNext: 0 }))
    await lifecycle(t, app, driver, workerProcesses(t, app))
  })
}

async function lifecycle (t: Test, app: FastifyInstance, driver: string, startWorker: () => Promise<ChildProcess>): Promise<void> {
  const ed = await createUser(app, 'editor')
  const words = [1, 2, 3].map(v => `fault${v}x${randomKey()}`)
  const text = (n: number): string => `version ${n} of the ${driver} document mentions ${words[n - 1]!} among other words\n`
  const found = async (n: number): Promise<string[]> => (await searchIndex(py, words[n - 1]!)).map(h => `${h.documentId}:${h.version}`)
  const rows = async (id: string) => await app.db.select().from(ingestions).where(eq(ingestions.documentId, id)).orderBy(ingestions.id)
  const settled = async (id: string) => await eventually(async () => {
    const all = await rows(id)
    return all.every(r => r.status !== 'queued' && r.status !== 'running') ? all : null
  }, 180_000, 250)
  const inFlight = async (id: string, operation: string) => await eventually(async () =>
    ((await controlPython(py)).active as Received[]).some(a => a.documentId === id && a.operation === operation), 60_000, 100)
  // an outage that lasts until the service has refused `n` requests of the document, then ends
  const outageUntilRefused = async (id: string, n: number) => {
    try {
      await eventually(async () => (await receivedFor(id)).filter(r => r.outcome === 'injected-failure').length >= n, 120_000, 100)
    } catch (err) {
      t.comment(`ingestions: ${JSON.stringify((await rows(id)).map(r => [r.id, r.operation, r.documentVersion, r.status, r.attempts, r.lastError]))}`)
      t.comment(`received: ${JSON.stringify(await receivedFor(id))}`)
      throw err
    }
    await controlPython(py, { failForMs: 0 })
  }

  let worker = await startWorker()
  const up = await upload(app, ed.headers, { filename: 'v1.txt', contentType: 'text/plain', data: text(1) })
  // The status first: a log cut short still says how the upload failed; the rest would only fail
  // on `/documents/undefined`.
  t.equal(up.statusCode, 201, `the first upload: HTTP ${up.statusCode} ${up.body}`)
  if (up.statusCode !== 201) return
  const id = up.json().id as string
  const first = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(first.statusCode, 202, first.body)
  t.equal((await waitForStatus(app, ed.headers, first.json().id, ['succeeded', 'failed'], 90_000)).status, 'succeeded')
  t.match(await indexedDocument(py, id), { id, version: 1 })

  // (1) a re-run of v1 is with the (slowed) backend when the worker dies; v2 and v3 arrive while no
  // worker runs; the next worker meets an outage (5xx) before the backend answers again.
  await controlPython(py, { delayMs: 3000 })
  const rerun = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(rerun.statusCode, 202, rerun.body)
  await inFlight(id, 'upsert')
  await kill(worker)
  t.equal((await addVersion(app, ed, id, text(2), {}, 'v2.txt')).statusCode, 201)
  t.equal((await addVersion(app, ed, id, text(3), {}, 'v3.txt')).statusCode, 201)
  await controlPython(py, { delayMs: 0, failForMs: 600_000 })
  worker = await startWorker()
  await outageUntilRefused(id, 2)
  const afterVersions = await settled(id)
  t.same(afterVersions.map(r => [r.operation, r.documentVersion, r.status]), [['upsert', 1, 'succeeded'], ['upsert', 1, 'succeeded'], ['upsert', 2, 'superseded'], ['upsert', 3, 'succeeded']])
  t.match(await indexedDocument(py, id), { id, version: 3 }, 'the backend ends holding v3')
  t.same(await found(3), [`${id}:3`], 'v3 is searchable')
  t.same([...await found(1), ...await found(2)], [], 'nothing of v1 or v2')
  t.notOk((await receivedFor(id)).some(r => r.version === 2), 'v2 never reached the backend')
  await indexEventually(app, ed.headers, id, { state: 'indexed', version: 3 })

  // (2) trash: the delete is with the backend when the worker dies; the next one meets an outage.
  await controlPython(py, { deleteDelayMs: 3000 })
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204)
  await inFlight(id, 'delete')
  await kill(worker)
  await controlPython(py, { deleteDelayMs: null, failForMs: 600_000 })
  const refusedBefore = (await receivedFor(id)).filter(r => r.outcome === 'injected-failure').length
  worker = await startWorker()
  await outageUntilRefused(id, refusedBefore + 2)
  await settled(id)
  t.equal(await indexedDocument(py, id), null, 'trashed: the backend holds nothing')
  t.same(await found(3), [], 'nothing searchable')
  await indexEventually(app, ed.headers, id, { state: 'none', version: null })

  // (3) restore, then purge, as without faults
  t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/restore`, headers: ed.headers })).statusCode, 200)
  await settled(id)
  t.match(await indexedDocument(py, id), { version: 3 }, 'restored: the current version again')
  t.same(await found(3), [`${id}:3`])
  await indexEventually(app, ed.headers, id, { state: 'indexed', version: 3 })
  const versionKeys = (await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id))).map(v => v.storageKey)
  t.equal(versionKeys.length, 3)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: ed.headers })).statusCode, 204)
  t.same(await app.db.select().from(documents).where(eq(documents.id, id)), [], 'the row is gone')
  await settled(id)
  await eventually(async () => (await indexedDocument(py, id)) === null, 60_000, 200)
  t.equal(await indexedDocument(py, id), null, 'nothing in the backend after the purge')
  await eventually(async () => (await objects(app)).every(k => !k.includes(id)), 60_000, 200)
  t.ok((await objects(app)).every(k => !k.includes(id)), 'every version\'s object is gone')

  // What the backend got: the same outcome sequence as a run without faults. The requests sent
  // again (the killed worker's, and the ones refused by the outage) carry the same Idempotency-Key
  // and were answered from the service's memory ("replayed") or refused before any work.
  const all = await receivedFor(id)
  const worked = all.filter(r => r.outcome !== 'injected-failure' && r.outcome !== 'replayed')
  t.same(worked.map(r => `${r.operation}:${r.version}:${r.outcome}`),
    ['upsert:1:succeeded', 'upsert:1:succeeded', 'upsert:3:succeeded', 'delete:3:succeeded', 'upsert:3:succeeded', 'delete:3:succeeded'],
    'trash, restore, trash; the purge had nothing more to send')
  t.equal(new Set(worked.map(r => r.idempotencyKey)).size, worked.length, 'no ingestion was worked twice')
  const ids = new Set((await rows(id)).map(r => r.id))
  t.ok(all.every(r => ids.has(r.idempotencyKey)), 'every request was one of the document\'s ingestions')
  t.ok(all.filter(r => r.outcome === 'injected-failure').length >= 4, 'the outages refused requests')
  const resentAfterKill = all.filter(r => r.outcome === 'replayed' || r.overlapped)
  t.ok(resentAfterKill.every(r => worked.some(w => w.idempotencyKey === r.idempotencyKey)), 'a request sent again, or overlapping another, is a redelivery of one already worked')
  t.same((await rows(id)).filter(r => r.status === 'failed'), [], 'no ingestion failed')
  await kill(worker)
}
