import http from 'node:http'
import https from 'node:https'
import type { FastifyInstance } from 'fastify'
import type { IngestionRow } from '../../domain/ingestions/store.js'
import { signedHeaders, signedPath } from '../../domain/ingestion-signing.js'
import { displayUrl } from '../../lib/http.js'

/** The HTTP exchange with the ingestion backend (docs/ingestion-backend.md), classified into outcomes. */

export type Outcome =
  | { kind: 'succeeded', result: unknown, line: string }
  | { kind: 'accepted', line: string }
  | { kind: 'permanent', error: string, line: string }
  | { kind: 'transient', error: string, line: string }

const snippet = (s: string): string => s.replace(/\s+/g, ' ').trim().slice(0, 300)

/**
 * When the backend says it could not download the document, where it was told to download it
 * from: local storage serves it on PUBLIC_URL, S3 on S3_ENDPOINT (both must be reachable from the backend).
 */
function downloadHint (app: FastifyInstance, text: string): string {
  if (!/download/i.test(text)) return ''
  return app.storage.driver === 'local'
    ? ` (the backend downloads documents from PUBLIC_URL, ${displayUrl(app.config.PUBLIC_URL)}: check that it can reach that address, or set PUBLIC_URL to one it can)`
    : ` (the backend downloads documents from S3_ENDPOINT, ${displayUrl(app.config.S3_ENDPOINT)}: check that it can reach that address)`
}

/** `truncated`: the body went past the cap and was not read further (`text` holds what was read). */
interface BackendAnswer { status: number, text: string, truncated: boolean }

class BackendTimeout extends Error {}

// Keep-alive connections to the backend, shared by every job of the process (idle sockets are
// unref'd by the agent, so they never hold the process open). node:http rather than fetch:
// undici's fetch cost the worker ~1.7 ms of CPU per call, a third of a whole dispatch.
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) }

/**
 * POSTs `body`, reads the answer as text; redirects are not followed. At most `maxBytes` of the
 * answer are read: past that the connection is dropped, so a huge or endless body costs neither
 * memory nor the whole timeout.
 */
async function post (target: URL, headers: Record<string, string>, body: string, timeoutMs: number, maxBytes: number): Promise<BackendAnswer> {
  const client = target.protocol === 'https:' ? https : http
  return await new Promise<BackendAnswer>((resolve, reject) => {
    let timedOut = false
    const fail = (err: Error) => { clearTimeout(timer); reject(timedOut ? new BackendTimeout() : err) }
    const req = client.request(target, {
      method: 'POST',
      agent: agents[target.protocol === 'https:' ? 'https:' : 'http:'],
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      const answer = (truncated: boolean): BackendAnswer => ({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), truncated })
      res.on('data', (c: Buffer) => {
        if (size + c.length > maxBytes) {
          chunks.push(c.subarray(0, maxBytes - size))
          clearTimeout(timer)
          res.removeAllListeners('data')
          resolve(answer(true))
          req.destroy()
          return
        }
        size += c.length
        chunks.push(c)
      })
      res.on('end', () => { clearTimeout(timer); resolve(answer(false)) })
      res.on('error', fail)
    })
    // The whole exchange, answer body included, must fit in the timeout.
    const timer = setTimeout(() => { timedOut = true; req.destroy(new BackendTimeout()) }, timeoutMs)
    req.on('error', fail)
    req.end(body)
  })
}

/** One POST to the backend, classified. Never throws. */
export async function callBackend (app: FastifyInstance, row: IngestionRow, body: string): Promise<Outcome> {
  const started = Date.now()
  const timeout = app.config.INGESTION_TIMEOUT_MS
  const at = displayUrl(app.config.INGESTION_URL)
  let res: BackendAnswer
  try {
    const target = new URL(app.config.INGESTION_URL)
    const signed = signedHeaders(app.config.INGESTION_SECRET, { method: 'POST', path: signedPath(target) }, body)
    res = await post(target, { 'content-type': 'application/json', 'idempotency-key': row.id, ...signed }, body, timeout, app.config.BODY_LIMIT)
  } catch (err) {
    const ms = Date.now() - started
    if (err instanceof BackendTimeout) {
      return { kind: 'transient', error: `the ingestion backend at ${at} timed out after ${timeout} ms (INGESTION_TIMEOUT_MS)`, line: `no answer within ${timeout} ms (timeout) from ${at}` }
    }
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ERR_INVALID_URL' ? 'INGESTION_URL is not a valid URL' : (e.code ?? e.message)
    const error = `could not reach the ingestion backend at ${at}: ${why} (check INGESTION_URL)`
    return { kind: 'transient', error, line: `network error after ${ms} ms: ${error}` }
  }
  const text = res.text
  const ms = Date.now() - started
  const line = `HTTP ${res.status} in ${ms} ms`
  // A 2xx is only as good as its body, which we refused to read whole: the backend broke the contract.
  if (res.truncated && res.status >= 200 && res.status < 300) {
    const error = `backend answered ${res.status} with a body larger than ${app.config.BODY_LIMIT} bytes (BODY_LIMIT); the rest was not read`
    return { kind: 'permanent', error, line: `${line}: answer body over ${app.config.BODY_LIMIT} bytes, read aborted` }
  }
  if (res.status === 202) return { kind: 'accepted', line: `${line}: accepted, waiting for the callback` }
  if (res.status >= 200 && res.status < 300) {
    let parsed: { status?: unknown, result?: unknown, error?: unknown } | null = null
    try { parsed = JSON.parse(text) } catch { /* handled below */ }
    if (parsed?.status === 'succeeded') return { kind: 'succeeded', result: parsed.result ?? null, line }
    if (parsed?.status === 'failed') {
      const error = typeof parsed.error === 'string' ? `${parsed.error}${downloadHint(app, parsed.error)}` : 'the backend reported a failure'
      return { kind: 'permanent', error, line: `${line}: failed: ${snippet(error)}` }
    }
    return { kind: 'permanent', error: `backend answered ${res.status} without {"status": "succeeded"}`, line: `${line}: invalid answer body` }
  }
  // A delete of something the backend does not hold is done (deletes are idempotent).
  if (res.status === 404 && row.operation === 'delete') return { kind: 'succeeded', result: { deleted: false, reason: 'not found in the index' }, line: `${line}: not in the index (a delete counts that as done)` }
  const hint = downloadHint(app, text)
  if (res.status >= 500) return { kind: 'transient', error: `backend answered ${res.status}: ${snippet(text)}${hint}`, line }
  return { kind: 'permanent', error: `backend refused the request with ${res.status}: ${snippet(text)}${hint}`, line }
}
