import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { Webhook } from 'standardwebhooks'
import { buildApp, buildWorkerApp } from '../../src/build.js'
import type { Config } from '../../src/config.js'
import { startWorkers } from '../../src/worker-runner.js'
import { privateDatabase, testConfig, TEST_PLUGIN_TIMEOUT, type TestUser } from '../helper.js'
import { upload } from '../documents/helpers.js'
import { randomBytes } from 'node:crypto'

interface Teardownable { teardown: (fn: () => unknown) => void }

export interface Received { headers: IncomingHttpHeaders, raw: string, body: { id: string, type: string, timestamp: string, data: Record<string, any> } }

/**
 * A real webhook receiver on loopback (node:http). `answer` picks each reply's status (and may
 * hold it); `down()` closes the port (connections refused) and `up()` opens the same port again.
 */
export async function receiver (t: Teardownable, answer: (r: Received, res: ServerResponse) => number | undefined = () => 204) {
  const received: Received[] = []
  let server: Server | null = null
  let port = 0
  const start = async (): Promise<void> => {
    const s = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        let body: Received['body']
        try { body = JSON.parse(raw) } catch { body = { id: '', type: '', timestamp: '', data: {} } }
        const r = { headers: req.headers, raw, body }
        received.push(r)
        const status = answer(r, res)
        if (status !== undefined) res.writeHead(status, { 'content-type': 'text/plain' }).end(`answer ${status} `.repeat(200))
      })
    })
    s.listen(port, '127.0.0.1')
    await once(s, 'listening')
    port = (s.address() as AddressInfo).port
    server = s
  }
  await start()
  const down = async (): Promise<void> => {
    const s = server
    server = null
    if (s === null) return
    s.closeAllConnections()
    await new Promise<void>(resolve => s.close(() => resolve()))
  }
  t.teardown(down)
  return { received, url: (path = '/hook') => `http://127.0.0.1:${port}${path}`, port: () => port, down, up: start }
}

/** Verifies a received request with the standardwebhooks package (throws when it does not verify). */
export function verify (secret: string, r: Pick<Received, 'headers' | 'raw'>): unknown {
  const h = r.headers
  return new Webhook(secret).verify(r.raw, { 'webhook-id': String(h['webhook-id']), 'webhook-timestamp': String(h['webhook-timestamp']), 'webhook-signature': String(h['webhook-signature']) })
}

/** The API and a worker running the webhooks queue, sharing one config (prefix, database). */
export async function apiAndWorker (t: Teardownable, overrides: Partial<Config> = {}, workerOverrides: Partial<Config> = {}) {
  // A database of its own: the relay fans every outbox event out to every endpoint, and other test
  // files (run side by side on the shared database) write events all the time.
  const DATABASE_URL = await privateDatabase(`wh_${randomBytes(4).toString('hex')}`)
  const config = testConfig({ DATABASE_URL, WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_RELAY_INTERVAL_MS: 100, WEBHOOK_BACKOFF_MS: 200, WEBHOOK_BACKOFF_MAX_MS: 1000, ...overrides })
  const app = await buildApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await app.close())
  await app.ready()
  const worker = await startWorker(t, { ...config, ...workerOverrides })
  return { app, worker, config }
}

/** A worker process' instance (in this process) running only the webhooks queue, closed at teardown. */
export async function startWorker (t: Teardownable, config: Config): Promise<{ app: FastifyInstance, stop: () => Promise<void> }> {
  const app = await buildWorkerApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  let running: Awaited<ReturnType<typeof startWorkers>> | null = null
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    // Bounded: a close stuck on a connection the test cut must not keep the other teardowns from running.
    await Promise.race([(async () => { await running?.close(); await app.close() })(), new Promise(resolve => setTimeout(resolve, 15_000).unref())])
  }
  t.teardown(stop)
  await app.ready()
  running = await startWorkers(app, ['webhooks'])
  return { app, stop }
}

/** Registers an endpoint through the API; returns its id and secret (and deletes it at teardown, so later tests' events do not reach it). */
export async function register (t: Teardownable, app: FastifyInstance, admin: TestUser, url: string, events: string[] = ['*']): Promise<{ id: string, secret: string }> {
  const res = await app.inject({ method: 'POST', url: '/webhooks', headers: admin.headers, payload: { url, events } })
  if (res.statusCode !== 201) throw new Error(`register: ${res.statusCode} ${res.body}`)
  const body = res.json() as { id: string, secret: string }
  t.teardown(async () => { await app.inject({ method: 'DELETE', url: `/webhooks/${body.id}`, headers: admin.headers }).catch(() => undefined) })
  return body
}

/** Uploads a small text document through the API; its id. */
export async function newDocument (app: FastifyInstance, user: TestUser, name = 'a.txt'): Promise<string> {
  const res = await upload(app, user.headers, { filename: name, contentType: 'text/plain', data: `hello ${name}` })
  if (res.statusCode !== 201) throw new Error(`upload: ${res.statusCode} ${res.body}`)
  return (res.json() as { id: string }).id
}

/** The received events of one subject, first delivery of each webhook-id only, in arrival order. */
export function streamOf (received: Received[], subjectId: string): Received[] {
  const seen = new Set<string>()
  return received.filter(r => {
    const id = String(r.headers['webhook-id'])
    const mine = r.body.data.id === subjectId || r.body.data.documentId === subjectId
    if (!mine || seen.has(id)) return false
    seen.add(id)
    return true
  })
}
