import { createHash, randomBytes } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { eq } from 'drizzle-orm'
import { documents, documentShares, documentVersions, ingestions } from '../../drizzle/schema/index.js'
import { newId } from '../../src/lib/ids.js'
import { callbackUrl, signedHeaders, signedPath } from '../../src/domain/ingestion-signing.js'
import { spawnProcess, waitForOutput } from '../helpers/processes.js'
import { startWorkers } from '../../src/worker-runner.js'
import type { QueueName } from '../../src/jobs/types.js'

export { ROOT } from '../helpers/processes.js'

/** A document row with real stored bytes (the documents routes are not needed for these tests). */
export async function createDocument (app: FastifyInstance, ownerId: string, opts: { content?: Buffer | string, filename?: string, mimeType?: string, visibility?: 'private' | 'internal' } = {}) {
  const content = Buffer.isBuffer(opts.content) ? opts.content : Buffer.from(opts.content ?? 'hello world\nsecond line here\n')
  const id = newId()
  const storageKey = `documents/${id}`
  await app.storage.put(storageKey, Readable.from([content]))
  const now = new Date()
  const row = {
    id,
    ownerId,
    title: `Doc ${id.slice(-6)}`,
    description: null,
    filename: opts.filename ?? 'notes.txt',
    mimeType: opts.mimeType ?? 'text/plain',
    size: content.length,
    sha256: createHash('sha256').update(content).digest('hex'),
    status: 'ready',
    visibility: opts.visibility ?? 'private',
    tags: [],
    storageKey,
    metadata: {},
    version: 1,
    createdAt: now,
    updatedAt: now,
  }
  await app.db.insert(documents).values(row)
  await app.db.insert(documentVersions).values({ documentId: id, number: 1, storageKey, size: row.size, sha256: row.sha256, mimeType: row.mimeType, filename: row.filename, createdAt: now, createdBy: ownerId })
  return row
}

export async function share (app: FastifyInstance, documentId: string, userId: string, access: 'read' | 'write'): Promise<void> {
  await app.db.insert(documentShares).values({ documentId, userId, access, createdAt: new Date() })
}

export async function ingestionRow (app: FastifyInstance, id: string) {
  const [row] = await app.db.select().from(ingestions).where(eq(ingestions.id, id))
  return row
}

export async function eventually<T> (fn: () => Promise<T | undefined | null | false>, ms = 15000, every = 100): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v !== undefined && v !== null && v !== false) return v
    } catch (err) { last = err }
    await sleep(every)
  }
  throw new Error(`condition not met within ${ms} ms${last !== undefined ? `: ${String(last)}` : ''}`)
}

/** Polls GET /ingestions/:id until its status is one of `statuses`. */
export async function waitForStatus (app: FastifyInstance, headers: Record<string, string>, id: string, statuses: string[], ms = 15000) {
  return await eventually(async () => {
    const res = await app.inject({ method: 'GET', url: `/ingestions/${id}`, headers })
    const body = res.json()
    return statuses.includes(body.status) ? body : null
  }, ms)
}

export async function freePort (): Promise<number> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  await new Promise<void>(resolve => srv.close(() => resolve()))
  return port
}

/** Serves `app` on 127.0.0.1:`port` with in-process workers for `queues`; both closed (workers first) when `t` ends. */
export async function serveWithWorkers (t: { teardown: (fn: () => unknown) => void }, app: FastifyInstance, port: number, queues: QueueName[]): Promise<void> {
  const started: { workers?: Awaited<ReturnType<typeof startWorkers>> } = {}
  t.teardown(async () => { await started.workers?.close(); await app.close() })
  await app.listen({ port, host: '127.0.0.1' })
  started.workers = await startWorkers(app, queues)
}

export interface ScriptedRequest { headers: IncomingMessage['headers'], raw: Buffer, body: any }

/** A scripted ingestion backend: `handler` decides each answer; every request is recorded. */
export async function scriptedBackend (handler: (req: ScriptedRequest, n: number, res: ServerResponse) => void | Promise<void>) {
  const requests: ScriptedRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      let body: unknown = null
      try { body = JSON.parse(raw.toString()) } catch { /* recorded raw */ }
      const r = { headers: req.headers, raw, body }
      requests.push(r)
      Promise.resolve(handler(r, requests.length, res)).catch(() => res.destroy())
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    requests,
    close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) },
  }
}

export const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

export interface PythonService { url: string, base: string, secret: string, proc: ChildProcess, output: () => string, close: () => Promise<void> }

/**
 * The reference Python service as a real child process on a free port. Its index is in memory
 * unless `extra` names an `--index-path` (a later flag wins).
 */
export async function startPython (secret: string, extra: string[] = []): Promise<PythonService> {
  const proc = spawnProcess('python3', ['examples/ingestion-service/server.py', '--host', '127.0.0.1', '--port', '0', '--secret', secret, '--log-level', 'WARNING', '--index-path', ':memory:', ...extra])
  // A service that never says it listens is killed: a failed start must not keep the test file alive.
  const [, port] = await waitForOutput(proc, /listening on [\d.]+:(\d+)/, { what: 'the python service', killOnFailure: true })
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    base: `http://127.0.0.1:${port}`,
    secret,
    proc: proc.child,
    output: proc.output,
    close: async () => { await proc.stop('SIGTERM') },
  }
}

export interface IndexedDocument { id: string, version: number, chunks: number, pipelineVersion: string, indexedAt: string }
export interface IndexHit { documentId: string, version: number, chunk: number, snippet: string, score: number }

/** What the reference service's index holds of document `id` (GET /index/documents/:id), null when nothing. */
export async function indexedDocument (py: Pick<PythonService, 'base'>, id: string): Promise<IndexedDocument | null> {
  const res = await fetch(`${py.base}/index/documents/${encodeURIComponent(id)}`)
  if (res.status === 404) return null
  if (res.status !== 200) throw new Error(`GET /index/documents/${id}: HTTP ${res.status}`)
  return await res.json() as IndexedDocument
}

/** The chunks the reference service's index holds of document `id`, in order ([] when none). */
export async function indexedChunks (py: Pick<PythonService, 'base'>, id: string): Promise<Array<{ chunk: number, version: number, text: string }>> {
  const res = await fetch(`${py.base}/index/documents/${encodeURIComponent(id)}/chunks`)
  if (res.status === 404) return []
  return (await res.json() as { chunks: Array<{ chunk: number, version: number, text: string }> }).chunks
}

/** Ranked hits of the reference service's GET /index/search. */
export async function searchIndex (py: Pick<PythonService, 'base'>, q: string, limit = 10): Promise<IndexHit[]> {
  const res = await fetch(`${py.base}/index/search?${new URLSearchParams({ q, limit: String(limit) }).toString()}`)
  if (res.status !== 200) throw new Error(`GET /index/search: HTTP ${res.status} ${await res.text()}`)
  return await res.json() as IndexHit[]
}

/**
 * The reference service's signed control endpoint: with a body, POST /_control (e.g. `{failNext: 3}`,
 * `{delayMs: 2000}`, `{writeFaults: 1}`, `{pipelineVersion: 'v2'}`); without, GET /_control (the
 * knobs and `received`, the operations it got, newest last).
 */
export async function controlPython (py: Pick<PythonService, 'base' | 'secret'>, body?: Record<string, unknown>): Promise<any> {
  const raw = body === undefined ? '' : JSON.stringify(body)
  const method = body === undefined ? 'GET' : 'POST'
  const headers = { 'content-type': 'application/json', ...signedHeaders(py.secret, { method, path: '/_control' }, raw) }
  const res = await fetch(`${py.base}/_control`, { method, headers, body: body === undefined ? undefined : raw })
  if (res.status !== 200) throw new Error(`${method} /_control: HTTP ${res.status} ${await res.text()}`)
  return await res.json()
}

/** The headers the backend sends with a callback for ingestion `signedFor` (signed for its callbackUrl). */
export function callbackHeaders (app: FastifyInstance, signedFor: string, raw: string, opts: { secret?: string, now?: number } = {}): Record<string, string> {
  const target = { method: 'POST', path: signedPath(callbackUrl(app.config.PUBLIC_URL, signedFor)) }
  return { 'content-type': 'application/json', ...signedHeaders(opts.secret ?? app.config.INGESTION_SECRET, target, raw, opts.now) }
}

/** POSTs a callback signed like the backend would (for `opts.signedFor`, default `id`; `opts.headers` override). */
export async function postCallback (app: FastifyInstance, id: string, body: unknown, opts: { secret?: string, headers?: Record<string, string>, now?: number, signedFor?: string } = {}) {
  const raw = JSON.stringify(body)
  const headers = { ...callbackHeaders(app, opts.signedFor ?? id, raw, opts), ...opts.headers }
  return await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: raw })
}

export interface SseMessage { event: string, data: any }

/** Opens GET /ingestions/:id/events on a listening app and collects messages until the stream ends. */
export function openSse (baseUrl: string, id: string, headers: Record<string, string>): { messages: SseMessage[], status: Promise<number>, done: Promise<SseMessage[]>, close: () => void } {
  const messages: SseMessage[] = []
  let resolveStatus: (n: number) => void = () => {}
  const status = new Promise<number>(resolve => { resolveStatus = resolve })
  let req: ReturnType<typeof httpRequest> | undefined
  const done = new Promise<SseMessage[]>((resolve, reject) => {
    req = httpRequest(`${baseUrl}/ingestions/${id}/events`, { headers: { ...headers, accept: 'text/event-stream' } }, (res) => {
      resolveStatus(res.statusCode ?? 0)
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buf += chunk
        let idx
        while ((idx = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, idx)
          buf = buf.slice(idx + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event !== undefined && data !== undefined) messages.push({ event, data: JSON.parse(data) })
        }
      })
      res.on('end', () => resolve(messages))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  return { messages, status, done, close: () => req?.destroy() }
}

export const randomKey = (): string => randomBytes(8).toString('hex')
