import http from 'node:http'
import https from 'node:https'
import { UnrecoverableError, type Job } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import { defineJob } from './types.js'
import type { DocumentRow } from '../domain/document-access.js'
import { DISPATCH_JOB, type DispatchData } from '../domain/ingestions/jobs.js'
import type { IngestionRow } from '../domain/ingestions/store.js'
import type { Transition } from '../domain/ingestions/transitions.js'
import { armCallbackTimeout, openAttempt, setLastError } from './ingestion/attempt.js'
import { callbackUrl, signedHeaders, signedPath } from '../domain/ingestion-signing.js'
import { displayUrl } from '../lib/http.js'

type Outcome =
  | { kind: 'succeeded', result: unknown, line: string }
  | { kind: 'accepted', line: string }
  | { kind: 'permanent', error: string, line: string }
  | { kind: 'transient', error: string, line: string }

/** The contract's payload, with a fresh short-lived download URL. */
async function payloadFor (app: FastifyInstance, row: IngestionRow, doc: DocumentRow): Promise<string> {
  const ttl = app.config.DOWNLOAD_URL_TTL
  const downloadUrl = await app.storage.presignGet(doc.storageKey, { expiresIn: ttl, filename: doc.filename, contentType: doc.mimeType, audience: 'internal' })
  return JSON.stringify({
    ingestionId: row.id,
    pipeline: row.pipeline,
    options: row.options ?? {},
    callbackUrl: callbackUrl(app.config.PUBLIC_URL, row.id),
    document: {
      id: doc.id,
      title: doc.title,
      filename: doc.filename,
      mimeType: doc.mimeType,
      size: doc.size,
      sha256: doc.sha256,
      downloadUrl,
      downloadUrlExpiresAt: new Date(Date.now() + ttl * 1000).toISOString(),
    },
  })
}

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
async function callBackend (app: FastifyInstance, row: IngestionRow, body: string): Promise<Outcome> {
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
  const hint = downloadHint(app, text)
  if (res.status >= 500) return { kind: 'transient', error: `backend answered ${res.status}: ${snippet(text)}${hint}`, line }
  return { kind: 'permanent', error: `backend refused the request with ${res.status}: ${snippet(text)}${hint}`, line }
}

/**
 * Sends one ingestion to the backend. 2xx succeeded -> succeeded; 202 -> running until the
 * callback (a timer fails it otherwise); 4xx -> failed, no retry; 5xx/timeout/network -> thrown,
 * so BullMQ retries with exponential backoff and jitter until the attempts run out.
 */
export default defineJob<DispatchData>({
  queue: 'ingestion',
  name: DISPATCH_JOB,
  async process (app, job: Job<DispatchData>) {
    const { ingestionId, requestId } = job.data
    const log = app.log.child({ ingestionId, requestId, jobId: job.id })
    // The row, its document and (when it can start) the attempt begun, in one round trip.
    const opened = await openAttempt(app, ingestionId)
    if (opened === null) {
      log.warn('ingestion row is gone; dropping its job')
      return { skipped: 'missing' }
    }
    const { row: initial, doc, started: row } = opened
    if (initial.status !== 'queued' && initial.status !== 'running') {
      log.info({ status: initial.status }, 'ingestion is final; nothing to dispatch')
      return { skipped: initial.status }
    }
    if (doc === null || doc.deletedAt !== null) {
      const error = 'the document was deleted before it could be ingested'
      await app.ingestions.transition(ingestionId, { from: ['queued', 'running'], to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error } })
      throw new UnrecoverableError(error)
    }
    if (doc.status === 'scanning' || doc.status === 'infected') {
      // Checked again here: a retried ingestion, or a trigger that raced with a new object.
      const error = doc.status === 'infected'
        ? `the document was found infected (${doc.error ?? 'malware'}); it is never ingested`
        : 'the document is being scanned for malware; trigger the ingestion again once it is ready'
      await app.ingestions.transition(ingestionId, { from: ['queued', 'running'], to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error } })
      throw new UnrecoverableError(error)
    }
    if (row === null) return { skipped: 'cancelled' }
    const max = job.opts.attempts ?? 1
    const tryNo = job.attemptsMade + 1
    let payload: string | null = null
    let outcome: Outcome
    try {
      payload = await payloadFor(app, row, doc)
    } catch (err) {
      log.warn({ err }, 'could not build the download URL')
    }
    if (payload === null) outcome = { kind: 'transient', error: 'could not create a download URL (storage unavailable)', line: 'not sent: the storage could not sign a download URL' }
    else outcome = await callBackend(app, row, payload)
    const head = `attempt ${row.attempts} (${tryNo}/${max}): ${outcome.line}`
    log[outcome.kind === 'transient' || outcome.kind === 'permanent' ? 'warn' : 'info']({ outcome: outcome.kind, attempt: row.attempts }, head)
    const attempt = { type: 'attempt', message: head }
    // The attempt's event on its own, with the status the row has now (a cancel may have come meanwhile).
    const noteAttempt = async (): Promise<IngestionRow | null> => {
      const current = await app.ingestions.find(row.id)
      await app.ingestions.note(row, current?.status ?? 'running', attempt.type, attempt.message)
      return current
    }
    // A final outcome writes the attempt and the new status in one transaction.
    const finish = async (t: Omit<Transition, 'from' | 'before'>): Promise<boolean> => {
      if (await app.ingestions.transition(row.id, { ...t, from: ['running'], before: [attempt] })) return true
      await noteAttempt()
      return false
    }

    switch (outcome.kind) {
      case 'succeeded':
        if (!await finish({ to: 'succeeded', set: { result: outcome.result, lastError: null, finishedAt: new Date() }, event: { type: 'succeeded', message: 'the backend finished the ingestion' } })) {
          log.info('result ignored: the ingestion changed meanwhile (cancelled?)')
        }
        return { status: 'succeeded' }
      case 'accepted': {
        const now = await noteAttempt()
        if (now?.status === 'running') await armCallbackTimeout(app, row.id, app.config.INGESTION_CALLBACK_TIMEOUT_MS)
        return { status: 'accepted' }
      }
      case 'permanent':
        await finish({ to: 'failed', set: { lastError: outcome.error, finishedAt: new Date() }, event: { type: 'failed', message: outcome.error } })
        throw new UnrecoverableError(outcome.error)
      case 'transient': {
        if (tryNo >= max) {
          const error = `gave up after ${tryNo} attempts: ${outcome.error}`
          await finish({ to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error } })
          throw new UnrecoverableError(error)
        }
        const current = await noteAttempt()
        if (current?.status !== 'running') return { skipped: current?.status ?? 'missing' }
        await setLastError(app, row.id, outcome.error)
        const base = app.config.INGESTION_BACKOFF_MS * 2 ** (tryNo - 1)
        await app.ingestions.note(row, 'running', 'retry_scheduled', `retry ${tryNo + 1}/${max} in about ${Math.round(base * 0.75)} ms (exponential backoff with jitter)`)
        throw new Error(outcome.error)
      }
    }
  },
})
