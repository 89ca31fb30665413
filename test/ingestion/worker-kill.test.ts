import { test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { build, createUser, TEST_DATABASE_URL, TEST_REDIS_URL } from '../helper.js'
import { createDocument, scriptedBackend, json, waitForStatus, eventually, ROOT } from './helpers.js'

test('SIGKILL of the worker mid-dispatch: the ingestion is picked up again and finishes', async (t) => {
  const held: ServerResponse[] = []
  const backend = await scriptedBackend((req, n, res) => {
    if (n === 1) { held.push(res); return } // the first worker dies while we hold its request
    json(res, 200, { status: 'succeeded', result: { n, key: req.headers['idempotency-key'] } })
  })
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
        WORKER_LOCK_MS: '1000',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let out = ''
    child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start: ${out}`)), 30000)
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('worker started')) { clearTimeout(timer); resolve() }
      })
    })
    return child
  }

  const first = await startWorker()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(res.statusCode, 202)
  const id = res.json().id
  // generous: a worker process compiled by tsx on a loaded machine takes a while to take its first job
  await eventually(async () => backend.requests.length === 1, 60000)
  t.equal((await waitForStatus(app, ed.headers, id, ['running'])).status, 'running', 'running while the backend holds the request')

  first.kill('SIGKILL')
  await once(first, 'exit')
  await startWorker()
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'], 30000)
  t.equal(ing.status, 'succeeded')
  t.equal(backend.requests.length, 2, 'sent again after the crash')
  t.same(ing.result, { n: 2, key: id }, 'same Idempotency-Key on the re-sent request')
  // Seen once under the full suite: attempts 1 with both requests made; the timeline says which attempt went uncounted.
  const timeline = (ing.events as Array<{ type: string, message: string }>).map(e => `${e.type}: ${e.message}`).join(' | ')
  t.equal(ing.attempts, 2, 'both attempts counted', { timeline })
  for (const r of held) r.destroy()
})
