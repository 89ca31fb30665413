import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { checkDestination, type Checked } from './destination.js'

export interface AttemptResult {
  /** the answer's status, null when there was none (refused, unreachable, timed out) */
  statusCode: number | null
  durationMs: number
  error: string | null
  /** the first 1 KiB of the answer's body */
  response: string | null
}

const RESPONSE_BYTES = 1024

/**
 * Keep-alive connections, one pool per checked address (and scheme): a pooled socket is only
 * reused for a request whose destination check answered that same address, so connection reuse
 * never bypasses the SSRF check (a name that re-resolves elsewhere gets another pool). Idle
 * sockets close after IDLE_MS, before the usual 5 s keep-alive of servers, so a reused socket is
 * rarely one the receiver is closing. Past MAX_POOLS, the least recently used idle pools are closed.
 */
const IDLE_MS = 4000
const MAX_POOLS = 256
const pools = new Map<string, http.Agent>()

function agentFor (protocol: string, address: string, family: number): http.Agent {
  const key = `${protocol}//${family}/${address}`
  let agent = pools.get(key)
  if (agent !== undefined) {
    // most recently used last: eviction takes the oldest first
    pools.delete(key)
    pools.set(key, agent)
  } else {
    if (pools.size >= MAX_POOLS) evictIdle()
    const opts = { keepAlive: true, timeout: IDLE_MS, maxSockets: 64, maxFreeSockets: 64, scheduling: 'lifo' as const }
    agent = protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts)
    pools.set(key, agent)
  }
  return agent
}

/** Too many pools: the least recently used ones with nothing in flight are closed (never a socket carrying a request). */
function evictIdle (): void {
  for (const [key, a] of pools) {
    if (pools.size < MAX_POOLS) return
    if (Object.keys(a.sockets).length > 0 || Object.keys(a.requests).length > 0) continue
    a.destroy()
    pools.delete(key)
  }
}

/**
 * One POST of a signed webhook. The destination is checked (src/domain/webhooks/destination.ts)
 * and the connection goes to the checked address (the `lookup` hook answers with it); redirects
 * are answers like any other (not followed); the whole attempt is bounded by `timeoutMs`. A batch
 * checks its endpoint once and passes the result (`checked`) to each of its attempts.
 */
export async function postWebhook (target: string, body: string, headers: Record<string, string>, opts: { timeoutMs: number, allowPrivate: boolean, userAgent: string, checked?: Checked }): Promise<AttemptResult> {
  const started = performance.now()
  const done = (r: Omit<AttemptResult, 'durationMs'>): AttemptResult => ({ ...r, durationMs: Math.round(performance.now() - started) })
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return done({ statusCode: null, error: 'the URL is not valid', response: null })
  }
  const checked = opts.checked ?? await checkDestination(url, opts.allowPrivate)
  if (!checked.ok) return done({ statusCode: null, error: `refused: ${checked.reason}`, response: null })
  const { address, family } = checked.to
  const pinned: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all === true) (cb as unknown as (e: null, a: Array<{ address: string, family: number }>) => void)(null, [{ address, family }])
    else cb(null, address, family)
  }
  const client = url.protocol === 'https:' ? https : http
  return await new Promise<AttemptResult>((resolve) => {
    let settled = false
    let complete = false
    const finish = (r: Omit<AttemptResult, 'durationMs'>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      // An answer read to its end leaves the socket to the pool; anything else closes it.
      if (!complete) req.destroy()
      resolve(done(r))
    }
    const req = client.request(url, {
      method: 'POST',
      lookup: pinned,
      agent: agentFor(url.protocol, address, family),
      headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': opts.userAgent },
    }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      const answer = () => finish({ statusCode: res.statusCode ?? null, error: null, response: Buffer.concat(chunks).subarray(0, RESPONSE_BYTES).toString('utf8') })
      res.on('data', (c: Buffer) => {
        if (size < RESPONSE_BYTES) chunks.push(c)
        size += c.length
        if (size >= RESPONSE_BYTES) answer()
      })
      res.on('end', () => { complete = true; answer() })
      res.on('error', answer)
    })
    const timer = setTimeout(() => finish({ statusCode: null, error: `no answer within ${opts.timeoutMs} ms`, response: null }), opts.timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) => finish({ statusCode: null, error: `${err.code ?? 'error'}: ${err.message}`.slice(0, 1000), response: null }))
    req.end(body)
  })
}
