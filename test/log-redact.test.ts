import { test, type Test } from 'tap'
import { Writable } from 'node:stream'
import { buildApp } from '../src/build.js'
import { serverOptions } from '../src/options.js'
import { createUser, testConfig } from './helper.js'
import { redactKeys, redactUrl } from '../src/lib/log-redact.js'
import { startS3 } from './documents/s3-server.js'

// issue 18: signed URLs and other bearer secrets never reach a log line.

/** The app as the server builds it (same logger settings), logging at info into an array. */
async function buildLogged (t: Test, overrides: Parameters<typeof testConfig>[0] = {}) {
  const config = testConfig({ ...overrides, LOG_LEVEL: 'info' })
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _e, cb) { lines.push(...chunk.toString('utf8').split('\n').filter(l => l !== '')); cb() } })
  const logger = { ...(serverOptions(config).logger as object), stream }
  const app = await buildApp(config, { logger } as never)
  t.teardown(async () => await app.close())
  await app.ready()
  return { app, lines }
}

const path = (url: string) => { const u = new URL(url); return u.pathname + u.search }

test('local: the /storage/<token> of signed PUT and GET URLs, auth headers and callback signatures are not logged', async (t) => {
  const { app, lines } = await buildLogged(t)
  const ed = await createUser(app, 'editor')
  const start = await app.inject({ method: 'POST', url: '/uploads', headers: ed.headers, payload: { filename: 'a.txt', mimeType: 'text/plain', size: 5 } })
  const ticket = start.json() as { uploadId: string, url: string }
  const putToken = new URL(ticket.url).pathname.split('/').pop()!
  t.equal((await app.inject({ method: 'PUT', url: path(ticket.url), headers: { 'content-type': 'text/plain' }, payload: 'hello' })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: ed.headers, payload: {} })).statusCode, 201)
  t.equal((await app.inject({ url: `/documents/${ticket.uploadId}/content`, headers: { ...ed.headers, cookie: 'session=cookie-secret-value' } })).statusCode, 200)
  // The URL the worker hands the ingestion backend for this document.
  const location = await app.storage.presignGet(`documents/${ticket.uploadId}/original`, { expiresIn: 60 })
  const getToken = new URL(location).pathname.split('/').pop()!
  t.equal((await app.inject({ url: path(location) })).statusCode, 200)
  // A tampered token is logged no more than a valid one.
  await app.inject({ url: `/storage/${getToken.slice(0, -2)}xx` })
  await app.inject({ method: 'POST', url: '/ingestions/00000000-0000-7000-8000-000000000000/callback', headers: { 'x-quire-signature': 'sha256=callback-signature-secret', 'x-quire-timestamp': '1' }, payload: {} })

  const all = lines.join('\n')
  t.ok(all.length > 0)
  for (const secret of [putToken, getToken, putToken.split('.')[1]!, getToken.split('.')[1]!, ed.accessToken, 'cookie-secret-value', 'callback-signature-secret']) {
    t.notOk(all.includes(secret), `never logged: ${secret.slice(0, 12)}...`)
  }
  const urls = lines.map(l => JSON.parse(l) as { req?: { url?: string } }).filter(l => l.req?.url !== undefined).map(l => l.req!.url!)
  t.ok(urls.includes('/storage/[redacted]'), 'the storage requests are still logged, with the token cut out')
  t.ok(urls.some(u => u.startsWith(`/documents/${ticket.uploadId}/content`)), 'other URLs are logged as they are')
})

test('s3: pre-signed URL parameters are cut out of logged URLs', async (t) => {
  const { app, lines } = await buildLogged(t, await startS3(t))
  await app.inject({ url: '/health?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA-cred-secret&X-Amz-Signature=deadbeefsignature&token=tok-secret&keep=1' })
  const all = lines.join('\n')
  for (const secret of ['AKIA-cred-secret', 'deadbeefsignature', 'tok-secret']) t.notOk(all.includes(secret), `never logged: ${secret}`)
  t.match(all, /X-Amz-Algorithm=AWS4-HMAC-SHA256/, 'the rest of the URL is kept')
  t.match(all, /keep=1/)
})

test('redactUrl', async (t) => {
  t.equal(redactUrl('/storage/abc.def'), '/storage/[redacted]')
  t.equal(redactUrl('/storage/abc.def?x=1'), '/storage/[redacted]?x=1')
  t.equal(redactUrl('/a?X-Amz-Signature=s&b=2&X-Amz-Security-Token=t'), '/a?X-Amz-Signature=[redacted]&b=2&X-Amz-Security-Token=[redacted]')
  t.equal(redactUrl('/a?x-amz-signature=s'), '/a?x-amz-signature=[redacted]')
  t.equal(redactUrl('/a?%58-Amz-Signature=s'), '/a?%58-Amz-Signature=[redacted]')
  t.equal(redactUrl('/documents?cursor=abc'), '/documents?cursor=abc')
})

test('API keys (issue 21) never reach a log line: Authorization header, URL path or query, creation answer', async (t) => {
  const { app, lines } = await buildLogged(t, { LOG_LEVEL: 'trace' })
  const ed = await createUser(app, 'editor')
  const made = await app.inject({ method: 'POST', url: '/api-keys', headers: ed.headers, payload: { name: 'logged', scopes: ['documents:read'] } })
  const key = made.json().key as string
  t.equal((await app.inject({ url: '/documents', headers: { authorization: `Bearer ${key}` } })).statusCode, 200)
  await app.inject({ url: `/documents/${key}`, headers: { authorization: `Bearer ${key}` } })
  await app.inject({ url: `/documents?api_key=${key}&q=${encodeURIComponent(key)}` })
  await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${key.slice(0, -2)}xx` } })
  const all = lines.join('\n')
  const secret = key.split('_').slice(2).join('_')
  t.notOk(all.includes(secret), 'the secret is in no line')
  t.notOk(all.includes(secret.slice(0, 20)), 'not even a part of it')
  t.match(all, new RegExp(`qk_${key.split('_')[1]!}_\\[redacted\\]`), 'the key\'s public id stays, to tell which key it was')
})

test('redactKeys', async (t) => {
  const key = `qk_0123456789abcdef_${'A'.repeat(43)}`
  t.equal(redactKeys(`a ${key} b`), 'a qk_0123456789abcdef_[redacted] b')
  t.equal(redactUrl(`/x/${key}?k=${key}`), '/x/qk_0123456789abcdef_[redacted]?k=qk_0123456789abcdef_[redacted]')
  t.equal(redactUrl('/a?api_key=whatever'), '/a?api_key=[redacted]')
  t.equal(redactKeys('no key here'), 'no key here')
})
