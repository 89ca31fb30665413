import { test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { eq } from 'drizzle-orm'
import { build, createUser, TEST_DATABASE_URL, TEST_REDIS_URL } from '../helper.js'
import { ingestions } from '../../drizzle/schema/index.js'
import { createDocument, eventually, waitForStatus, ROOT } from './helpers.js'
import { addVersion, indexBackend, indexEventually } from './index-helpers.js'

test('v1 -> v2 -> v3 with the worker SIGKILLed mid-sequence and the backend answering 5xx: the same end state', async (t) => {
  const backend = await indexBackend()
  t.teardown(backend.close)
  const app = await build(t, { INGESTION_URL: backend.url })
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)

  const children: ChildProcess[] = []
  t.teardown(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })
  const startWorker = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, ['--import=tsx', 'src/worker.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: TEST_DATABASE_URL,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: app.config.REDIS_PREFIX,
        JWT_SECRET: app.config.JWT_SECRET,
        STORAGE_URL_SECRET: app.config.STORAGE_URL_SECRET,
        STORAGE_DIR: app.config.STORAGE_DIR,
        INGESTION_SECRET: app.config.INGESTION_SECRET,
        INGESTION_RECOVERY_INTERVAL_MS: '0',
        INGESTION_URL: backend.url,
        INGESTION_TIMEOUT_MS: '60000',
        INGESTION_BACKOFF_MS: '50',
        INGESTION_MAX_ATTEMPTS: '10',
        WORKER_LOCK_MS: '1000',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let out = ''
    child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start: ${out}`)), 60000)
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('worker started')) { clearTimeout(timer); resolve() }
      })
    })
    return child
  }

  const first = await startWorker()
  backend.pause()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(res.statusCode, 202)
  await waitForStatus(app, ed.headers, res.json().id, ['running'], 60000)
  await addVersion(app, doc.id, ed.id, 'v2')
  await addVersion(app, doc.id, ed.id, 'v3')
  first.kill('SIGKILL')
  await once(first, 'exit')
  // the first worker's request dies with it; the next answers are 5xx for a while
  backend.setFailures(2)
  await startWorker()
  backend.resume()
  const rows = await eventually(async () => {
    const r = await app.db.select().from(ingestions).where(eq(ingestions.documentId, doc.id)).orderBy(ingestions.id)
    return r.length === 3 && r.every(x => x.status !== 'queued' && x.status !== 'running') ? r : null
  }, 120000, 200)
  t.same(rows.map(r => [r.documentVersion, r.status]), [[1, 'succeeded'], [2, 'superseded'], [3, 'succeeded']])
  t.equal(backend.held.get(doc.id), 3, 'the backend ends holding v3')
  const versions = backend.sent.filter(s => s.documentId === doc.id).map(s => s.version)
  t.notOk(versions.includes(2), 'v2 never sent')
  t.equal(versions[versions.length - 1], 3, 'v3 last: nothing older was sent after it')
  await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 3 })
})
