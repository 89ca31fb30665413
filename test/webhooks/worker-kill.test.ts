import { test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import type { ServerResponse } from 'node:http'
import { build, createUser, TEST_REDIS_URL } from '../helper.js'
import { privateDatabase } from '../scale/helpers.js'
import { eventually, ROOT } from '../ingestion/helpers.js'
import { newDocument, receiver, register, streamOf, verify } from './helpers.js'

test('the worker SIGKILLed mid-delivery: another worker delivers the event (same webhook-id)', async (t) => {
  const held: ServerResponse[] = []
  const rx = await receiver(t, (_r, res) => {
    if (held.length === 0) { held.push(res); return undefined } // the first worker dies while we hold its request
    return 204
  })
  t.teardown(() => { for (const r of held) r.destroy() })
  // A database of its own: the relay would fan other files' events out to this endpoint too.
  const app = await build(t, { WEBHOOK_ALLOW_PRIVATE: true, DATABASE_URL: await privateDatabase('wh_kill') })
  const admin = await createUser(app, 'admin')
  const editor = await createUser(app, 'editor')
  const hook = await register(t, app, admin, rx.url(), ['document.created'])

  const children: ChildProcess[] = []
  t.teardown(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })
  const startWorker = async (): Promise<ChildProcess> => {
    const c = app.config
    const child = spawn(process.execPath, ['--import=tsx', 'src/worker.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: app.config.DATABASE_URL,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: c.REDIS_PREFIX,
        JWT_SECRET: c.JWT_SECRET,
        STORAGE_URL_SECRET: c.STORAGE_URL_SECRET,
        STORAGE_DIR: c.STORAGE_DIR,
        INGESTION_SECRET: c.INGESTION_SECRET,
        INGESTION_RECOVERY_INTERVAL_MS: '0',
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_RELAY_INTERVAL_MS: '100',
        WEBHOOK_TIMEOUT_MS: '60000',
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
  const id = await newDocument(app, editor)
  await eventually(async () => held.length === 1, 60_000)
  first.kill('SIGKILL')
  await startWorker()
  // Other test files may create documents meanwhile: follow the held event by its webhook-id.
  const heldId = rx.received[0]!.headers['webhook-id']
  const got = await eventually(async () => { const same = rx.received.filter(r => r.headers['webhook-id'] === heldId); return same.length >= 2 ? same : null }, 60_000)
  t.ok(streamOf(rx.received, id).length >= 1, 'our document\'s event arrived')
  t.doesNotThrow(() => verify(hook.secret, got[1]!), 'the second attempt is signed like the first')
  const delivered = await eventually(async () => {
    const items = (await app.inject({ method: 'GET', url: `/webhooks/${hook.id}/deliveries`, headers: admin.headers })).json().items as Array<{ eventId: string, status: string }>
    return items.find(d => d.eventId === heldId && d.status === 'delivered')
  }, 30_000)
  t.ok(delivered, 'delivered by the second worker')
})
