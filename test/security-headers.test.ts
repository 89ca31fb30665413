import { test } from 'tap'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import helmet from 'helmet'
import { buildApp } from '../src/build.js'
import { createUser, testConfig } from './helper.js'
import { createDocument } from './ingestion/helpers.js'
import { helmetHeaders } from '../plugins/external/helmet.js'

// The policy as the plugin gives it to helmet, spelled out: what every answer must carry.
const EXPECTED: Record<string, string> = {
  'content-security-policy': "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' 'unsafe-inline';upgrade-insecure-requests",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-site',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
}

const pick = (headers: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.keys(EXPECTED).map(k => [k, headers[k]]))

test('helmetHeaders records what helmet itself sets on a response', async (t) => {
  const options = { contentSecurityPolicy: { directives: { defaultSrc: ["'none'"] } }, hsts: false } as const
  const set = new Map<string, string>()
  const removed: string[] = []
  const res = { setHeader: (k: string, v: string) => set.set(k.toLowerCase(), v), removeHeader: (k: string) => removed.push(k) }
  helmet(options)({} as never, res as never, () => {})
  const got = helmetHeaders(options)
  t.same(got, Object.fromEntries(set), 'the same headers and values as a real run')
  t.notOk('strict-transport-security' in got, 'a header helmet was told to leave out stays out')
  t.ok(removed.includes('X-Powered-By'), 'helmet removes X-Powered-By (nothing to remove here: Fastify never sets it)')
})

test('every kind of answer carries the security headers', async (t) => {
  const app = await buildApp(testConfig({ RATE_LIMIT_MAX: 3, RATE_LIMIT_WINDOW: 60_000 }))
  t.teardown(async () => await app.close())
  app.get('/__helmet-off', { config: { public: true, rateLimit: false }, helmet: false }, async () => ({ ok: true }))
  app.get('/__helmet-own', { config: { public: true, rateLimit: false }, helmet: { frameguard: { action: 'deny' } } }, async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const editor = await createUser(app, 'editor')
  const doc = await createDocument(app, editor.id)
  const auth = editor.headers

  const cases: Array<[string, { method?: string, url: string, headers?: Record<string, string> }, number]> = [
    ['a public route', { url: '/health' }, 200],
    ['an authenticated JSON answer', { url: `/documents/${doc.id}`, headers: auth }, 200],
    ['a listing', { url: '/documents?limit=5', headers: auth }, 200],
    ['the stored bytes', { url: `/documents/${doc.id}/content`, headers: auth }, 200],
    ['a 401', { url: '/documents' }, 401],
    ['a 404 from the router', { url: '/no/such/route' }, 404],
    ['a 400 from validation', { url: '/documents?limit=abc', headers: auth }, 400],
    ['the API docs page', { url: '/docs/' }, 200],
    ['a HEAD', { method: 'HEAD', url: `/documents/${doc.id}`, headers: auth }, 200],
    ['a 304', { url: `/documents/${doc.id}`, headers: { ...auth, 'if-none-match': '*' } }, 304],
  ]
  // Each from its own address: the limit (3 a minute) is per client.
  for (const [i, [name, req, status]] of cases.entries()) {
    const res = await app.inject({ method: (req.method ?? 'GET') as 'GET' | 'HEAD', url: req.url, headers: req.headers, remoteAddress: `10.9.${i}.1` })
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.same(pick(res.headers), EXPECTED, `${name}: every security header`)
  }

  // A rate-limited answer, from the limiter's own hook.
  let limited = null
  for (let i = 0; i < 6 && limited === null; i++) {
    const res = await app.inject({ method: 'GET', url: '/no/such/thing', remoteAddress: '10.8.0.1' })
    if (res.statusCode === 429) limited = res
  }
  t.ok(limited !== null, 'the limiter answered 429')
  t.same(pick(limited!.headers), EXPECTED, 'a 429: every security header')

  // Routes with their own helmet options get @fastify/helmet's answer, not the global one.
  const off = await app.inject({ method: 'GET', url: '/__helmet-off' })
  t.equal(off.statusCode, 200)
  t.notOk('content-security-policy' in off.headers, 'helmet: false leaves the headers out')
  const own = await app.inject({ method: 'GET', url: '/__helmet-own' })
  t.equal(own.headers['x-frame-options'], 'DENY', "a route's own option wins")
  t.equal(own.headers['content-security-policy'], EXPECTED['content-security-policy'], 'the rest of the global policy still applies')

  // The live events stream is hijacked (Fastify writes no headers of its own there).
  const trig = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: auth, payload: {} })
  t.equal(trig.statusCode, 202)
  const sse = await new Promise<{ status: number, headers: IncomingHttpHeaders }>((resolve, reject) => {
    const req = httpRequest(`${base}/ingestions/${trig.json().id as string}/events`, { headers: { ...auth, accept: 'text/event-stream', 'x-request-id': 'sse-helmet-check' } }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers })
      req.destroy()
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(sse.status, 200)
  t.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(sse.headers['x-request-id'], 'sse-helmet-check', 'the request id, as before')
  t.same(pick(sse.headers), EXPECTED, 'the event stream: every security header')
})
