import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { signedHeaders } from '../../src/domain/ingestion-signing.js'
import { randomKey, type PythonService } from './helpers.js'

/**
 * What stands in for Quire's storage in the backend's contract tests: serves bytes at paths (404
 * for unknown ones), counts downloads, can hold a download open until released, and records the
 * callbacks POSTed to it.
 */
export async function fileServer () {
  const files = new Map<string, Buffer>()
  const hits = new Map<string, number>()
  const held = new Map<string, Promise<void>>()
  const callbacks: Array<{ url: string, body: any }> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? '/'
      if (req.method === 'POST') {
        callbacks.push({ url: path, body: JSON.parse(Buffer.concat(chunks).toString()) })
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
        return
      }
      hits.set(path, (hits.get(path) ?? 0) + 1)
      const serve = () => {
        const body = files.get(path)
        if (body === undefined) res.writeHead(404).end()
        else res.writeHead(200, { 'content-length': body.length }).end(body)
      }
      held.get(path)?.then(serve, serve) ?? serve()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    base,
    callbacks,
    put: (path: string, content: Buffer | string) => { files.set(path, Buffer.from(content)) },
    hits: (path: string) => hits.get(path) ?? 0,
    /** Downloads of `path` wait until the returned function is called. */
    hold: (path: string): () => void => {
      let release = () => {}
      held.set(path, new Promise<void>(resolve => { release = resolve }))
      return () => { held.delete(path); release() }
    },
    close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) },
  }
}

export type FileServer = Awaited<ReturnType<typeof fileServer>>

export interface Sent { status: number, body: any, key: string }

/** Signed POST /ingest requests to the reference service, as Quire's worker sends them. */
export function ingestClient (py: PythonService, files: FileServer) {
  const send = async (payload: Record<string, unknown>, key: string): Promise<Sent> => {
    const raw = JSON.stringify(payload)
    const headers = { 'content-type': 'application/json', 'idempotency-key': key, ...signedHeaders(py.secret, { method: 'POST', path: '/ingest' }, raw) }
    const res = await fetch(py.url, { method: 'POST', headers, body: raw })
    return { status: res.status, body: await res.json(), key }
  }
  const base = (key: string, operation: string | undefined, options: Record<string, unknown>) => ({
    ingestionId: key,
    ...(operation === undefined ? {} : { operation }),
    pipeline: 'default',
    options,
    callbackUrl: `${files.base}/ingestions/${key}/callback`,
  })
  return {
    send,
    /** Serves `content` as version `version` of document `id` and sends its upsert. */
    upsert: async (id: string, version: number | undefined, content: Buffer | string, opts: { key?: string, mimeType?: string, options?: Record<string, unknown>, serve?: boolean, operation?: string } = {}): Promise<Sent> => {
      const bytes = Buffer.from(content)
      const path = `/files/${id}/v${version ?? 'none'}`
      if (opts.serve !== false) files.put(path, bytes)
      const key = opts.key ?? randomKey()
      const document = {
        id,
        ...(version === undefined ? {} : { version }),
        title: `Doc ${id}`,
        filename: 'f',
        mimeType: opts.mimeType ?? 'text/plain',
        size: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        downloadUrl: `${files.base}${path}`,
        downloadUrlExpiresAt: new Date(Date.now() + 600000).toISOString(),
      }
      return await send({ ...base(key, 'operation' in opts ? opts.operation : 'upsert', opts.options ?? {}), document }, key)
    },
    remove: async (id: string, version: number, opts: { key?: string, options?: Record<string, unknown> } = {}): Promise<Sent> => {
      const key = opts.key ?? randomKey()
      return await send({ ...base(key, 'delete', opts.options ?? {}), document: { id, version } }, key)
    },
  }
}

/** A unique document id for one test. */
export const docId = (tag: string): string => `${tag}-${randomKey()}`
