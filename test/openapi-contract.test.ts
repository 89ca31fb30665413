// The OpenAPI document says what the routes really do: media types, headers, optional bodies;
// and a real OpenAPI linter (@redocly/cli, recommended rules, redocly.yaml) finds nothing in it.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { test } from 'tap'
import { build, createUser } from './helper.js'
import { buildWith, upload } from './documents/helpers.js'

const root = join(import.meta.dirname, '..')

interface Header { $ref?: string, description?: string, schema?: unknown }
interface Response { description?: string, headers?: Record<string, Header>, content?: Record<string, { schema?: { type?: string, format?: string, $ref?: string } }> }
interface Operation {
  parameters?: Array<{ name: string, in: string, required?: boolean }>
  requestBody?: { required?: boolean, content?: Record<string, unknown> }
  responses: Record<string, Response>
}
interface Doc { paths: Record<string, Record<string, Operation>>, components: { headers?: Record<string, Header> } }

interface LintReport { totals: { errors: number, warnings: number }, problems: Array<{ ruleId: string, severity: string, message: string, location?: Array<{ pointer?: string }> }> }

test('the OpenAPI document matches the HTTP contract', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json<Doc>()
  const op = (method: string, path: string): Operation => {
    const found = doc.paths[path]?.[method]
    if (found === undefined) throw new Error(`${method.toUpperCase()} ${path} is not in the document`)
    return found
  }
  /** The response's header names, lower-cased, with $refs to components.headers resolved. */
  const headersOf = (r: Response | undefined): Map<string, Header> => new Map(Object.entries(r?.headers ?? {}).map(([name, h]) => {
    const resolved = h.$ref === undefined ? h : doc.components.headers?.[h.$ref.replace('#/components/headers/', '')]
    return [name.toLowerCase(), resolved ?? {}]
  }))
  const requestHeaders = (o: Operation): Map<string, boolean> => new Map((o.parameters ?? []).filter(p => p.in === 'header').map(p => [p.name.toLowerCase(), p.required === true]))

  await t.test('redocly lint (recommended rules, redocly.yaml) reports no error and no warning', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'quire-openapi-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'openapi.json')
    writeFileSync(file, res.body)
    // Offline: no telemetry, no update check (redocly.yaml also says `telemetry: off`).
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true', NO_COLOR: '1' }
    const bin = join(root, 'node_modules/.bin/redocly')
    const out = await promisify(execFile)(bin, ['lint', file, '--config', join(root, 'redocly.yaml'), '--format=json'], { env, cwd: dir, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })
      .catch((err: { stdout?: string, stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }))
    let report: LintReport
    try {
      report = JSON.parse(out.stdout) as LintReport
    } catch {
      t.fail(`redocly lint did not answer JSON:\n${out.stdout}\n${out.stderr}`)
      return
    }
    const list = (severity: string) => report.problems.filter(p => p.severity === severity).map(p => `${p.ruleId} at ${p.location?.[0]?.pointer ?? '?'}: ${p.message}`)
    t.equal(report.totals.errors, 0, `redocly errors:\n  ${list('error').join('\n  ')}`)
    t.equal(report.totals.warnings, 0, `redocly warnings (fix, or turn the rule off in redocly.yaml with a reason):\n  ${list('warn').join('\n  ')}`)
  })

  await t.test('binary and text routes declare their real media types, not JSON', async (t) => {
    const binary = (r: Response | undefined, types: string[], label: string) => {
      t.same(Object.keys(r?.content ?? {}), types, `${label}: ${types.join(', ')}`)
      for (const media of Object.values(r?.content ?? {})) t.match(media.schema, { type: 'string', format: 'binary' }, `${label}: binary schema`)
    }
    const content = op('get', '/documents/{id}/content')
    binary(content.responses['200'], ['*/*'], 'GET content 200 (the document\'s own type)')
    binary(content.responses['206'], ['*/*'], 'GET content 206')
    binary(op('get', '/documents/{id}/thumbnail').responses['200'], ['image/webp'], 'GET thumbnail 200')
    const storageGet = op('get', '/storage/{token}')
    binary(storageGet.responses['200'], ['*/*'], 'GET /storage 200')
    binary(storageGet.responses['206'], ['*/*'], 'GET /storage 206')
    t.same(Object.keys(op('put', '/storage/{token}').requestBody?.content ?? {}), ['application/octet-stream'], 'PUT /storage takes raw bytes')

    const metrics = op('get', '/metrics').responses['200']
    const [metricsType] = Object.keys(metrics?.content ?? {})
    t.match(metricsType, /^text\/plain; version=0\.0\.4/, 'GET /metrics: Prometheus text format')
    const scraped = await app.inject({ method: 'GET', url: '/metrics' })
    t.equal(scraped.headers['content-type'], metricsType, 'and that is the Content-Type it answers with')
    t.same(Object.keys(op('get', '/ingestions/{id}/events').responses['200']?.content ?? {}), ['text/event-stream'], 'SSE stream: text/event-stream')

    // Errors stay JSON on these routes (a route-wide `produces` would have turned them into bytes).
    for (const [method, path] of [['get', '/documents/{id}/content'], ['get', '/documents/{id}/thumbnail'], ['get', '/storage/{token}'], ['get', '/ingestions/{id}/events']] as const) {
      t.same(Object.keys(op(method, path).responses['404']?.content ?? {}), ['application/json'], `${method.toUpperCase()} ${path} 404 is JSON`)
    }
  })

  await t.test('request headers are declared', async (t) => {
    const content = requestHeaders(op('get', '/documents/{id}/content'))
    for (const h of ['range', 'if-range', 'if-none-match']) t.equal(content.get(h), false, `GET content: optional ${h}`)
    t.equal(requestHeaders(op('get', '/documents/{id}')).get('if-none-match'), false, 'GET document: If-None-Match')
    t.equal(requestHeaders(op('patch', '/documents/{id}')).get('if-match'), false, 'PATCH document: If-Match')
    t.equal(requestHeaders(op('get', '/storage/{token}')).get('range'), false, 'GET /storage: Range')
    const callback = requestHeaders(op('post', '/ingestions/{id}/callback'))
    t.equal(callback.get('x-quire-timestamp'), true, 'callback: X-Quire-Timestamp required')
    t.equal(callback.get('x-quire-signature'), true, 'callback: X-Quire-Signature required')
    t.equal(requestHeaders(op('post', '/documents/{id}/ingestions')).get('idempotency-key'), false, 'ingest: Idempotency-Key')
    t.equal(requestHeaders(op('post', '/ingestions')).get('idempotency-key'), false, 'bulk ingest: Idempotency-Key')
  })

  await t.test('response headers are declared', async (t) => {
    const has = (method: string, path: string, status: string, names: string[]) => {
      const headers = headersOf(op(method, path).responses[status])
      for (const n of names) t.ok(headers.get(n.toLowerCase())?.schema, `${method.toUpperCase()} ${path} ${status}: ${n}`)
    }
    has('get', '/documents/{id}/content', '200', ['ETag', 'Accept-Ranges', 'Content-Disposition'])
    has('get', '/documents/{id}/content', '206', ['ETag', 'Content-Range'])
    has('get', '/documents/{id}/content', '304', ['ETag'])
    has('get', '/documents/{id}/content', '302', ['Location'])
    has('get', '/documents/{id}/content', '416', ['Content-Range'])
    has('get', '/documents/{id}/thumbnail', '200', ['ETag'])
    has('get', '/storage/{token}', '206', ['Content-Range'])
    has('get', '/storage/{token}', '416', ['Content-Range'])
    has('get', '/documents/{id}', '200', ['ETag'])
    has('get', '/documents/{id}', '304', ['ETag'])
    has('patch', '/documents/{id}', '200', ['ETag'])
    has('post', '/documents/{id}/restore', '200', ['ETag'])
    has('post', '/documents', '201', ['ETag', 'Location'])
    has('post', '/uploads/{uploadId}/complete', '201', ['ETag', 'Location'])
    has('post', '/users', '201', ['Location'])

    // Every response of every operation: X-Request-Id; on rate-limited routes X-RateLimit-* and a
    // documented 429; every 429 with Retry-After.
    const unlimited = new Set(['GET /health', 'GET /health/ready', 'GET /metrics', 'GET /ingestions/{id}/events'])
    const gaps: string[] = []
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, o] of Object.entries(item)) {
        const key = `${method.toUpperCase()} ${path}`
        const limited = !unlimited.has(key)
        if (limited && o.responses['429'] === undefined) gaps.push(`${key}: no 429`)
        for (const [status, r] of Object.entries(o.responses)) {
          const h = headersOf(r)
          const want = ['x-request-id', ...(limited ? ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'] : []), ...(status === '429' ? ['retry-after'] : [])]
          const missing = want.filter(n => h.get(n)?.schema === undefined)
          if (missing.length > 0) gaps.push(`${key} ${status}: no ${missing.join(', ')}`)
          if (r.description === undefined || r.description === '' || r.description === 'Default Response') gaps.push(`${key} ${status}: no description`)
        }
        if (requestHeaders(o).get('x-request-id') !== false) gaps.push(`${key}: X-Request-Id request header not declared`)
      }
    }
    t.same(gaps, [], `gaps:\n  ${gaps.join('\n  ')}`)

    // And they are really sent: a rate-limited 200 carries them all.
    const user = await createUser(app, 'editor')
    const me = await app.inject({ method: 'GET', url: '/auth/me', headers: user.headers })
    for (const n of ['x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) t.ok(me.headers[n], `GET /auth/me sends ${n}`)
  })

  await t.test('the headers responses really carry are the declared ones', async (t) => {
    // Sent => declared (for the status answered), over real responses of the routes that set them.
    const watched = ['etag', 'location', 'content-range', 'content-disposition', 'accept-ranges', 'retry-after',
      'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']
    const check = (method: string, path: string, r: { statusCode: number, headers: Record<string, unknown> }, expect: string[]) => {
      const declared = headersOf(op(method, path).responses[String(r.statusCode)])
      const sent = watched.filter(h => r.headers[h] !== undefined)
      for (const h of expect) t.ok(sent.includes(h), `${method.toUpperCase()} ${path} ${r.statusCode} sends ${h}`)
      t.same(sent.filter(h => !declared.has(h)), [], `${method.toUpperCase()} ${path} ${r.statusCode}: every header sent is declared`)
    }
    const ed = await createUser(app, 'editor')
    const admin = await createUser(app, 'admin')
    const created = await upload(app, ed.headers, { filename: 'a.txt', data: 'hello, openapi' })
    check('post', '/documents', created, ['etag', 'location'])
    const id = created.json<{ id: string }>().id
    const one = await app.inject({ url: `/documents/${id}`, headers: ed.headers })
    check('get', '/documents/{id}', one, ['etag'])
    check('get', '/documents/{id}', await app.inject({ url: `/documents/${id}`, headers: { ...ed.headers, 'if-none-match': String(one.headers.etag) } }), ['etag'])
    check('patch', '/documents/{id}', await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { title: 'b' } }), ['etag'])
    const url = `/documents/${id}/content`
    const full = await app.inject({ url, headers: ed.headers })
    check('get', '/documents/{id}/content', full, ['etag', 'content-disposition', 'accept-ranges'])
    check('get', '/documents/{id}/content', await app.inject({ url, headers: { ...ed.headers, range: 'bytes=0-4' } }), ['content-range'])
    check('get', '/documents/{id}/content', await app.inject({ url, headers: { ...ed.headers, range: 'bytes=99-' } }), ['content-range'])
    check('get', '/documents/{id}/content', await app.inject({ url, headers: { ...ed.headers, 'if-none-match': String(full.headers.etag) } }), ['etag'])
    check('post', '/users', await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: `oa-${id}@example.test`, password: 'a-long-password-1', role: 'viewer' } }), ['location'])
    check('get', '/metrics', await app.inject({ url: '/metrics' }), ['x-request-id'])

    const key = `openapi-test/${id}`
    await app.storage.put(key, Readable.from([Buffer.from('0123456789')]))
    t.teardown(async () => await app.storage.delete(key))
    const signed = new URL(await app.storage.presignGet(key, { expiresIn: 60, filename: 'x.bin' }), 'http://local').pathname
    check('get', '/storage/{token}', await app.inject({ url: signed }), ['content-disposition', 'accept-ranges'])
    check('get', '/storage/{token}', await app.inject({ url: signed, headers: { range: 'bytes=2-3' } }), ['content-range'])
    check('get', '/storage/{token}', await app.inject({ url: signed, headers: { range: 'bytes=50-' } }), ['content-range'])

    // On S3, ?redirect=true answers 302 to a pre-signed URL.
    const s3 = await buildWith(t, 's3')
    const owner = await createUser(s3, 'editor')
    const onS3 = await upload(s3, owner.headers, { filename: 'b.txt', data: 'hello, s3' })
    const redirect = await s3.inject({ url: `/documents/${onS3.json<{ id: string }>().id}/content?redirect=true`, headers: owner.headers })
    t.equal(redirect.statusCode, 302)
    check('get', '/documents/{id}/content', redirect, ['location', 'etag'])
  })

  await t.test('optional bodies are not required, and may really be left out', async (t) => {
    t.equal(op('post', '/uploads/{uploadId}/complete').requestBody?.required, false, 'POST /uploads/{uploadId}/complete: body optional')
    t.equal(op('post', '/documents/{id}/ingestions').requestBody?.required, false, 'POST /documents/{id}/ingestions: body optional')
    t.equal(op('post', '/users').requestBody?.required, true, 'POST /users: body required')
    const required = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item)
      .filter(([, o]) => o.requestBody !== undefined && o.requestBody.required !== true).map(([m]) => `${m.toUpperCase()} ${path}`))
    t.same(required.sort(), ['POST /documents/{id}/ingestions', 'POST /uploads/{uploadId}/complete'], 'exactly these bodies are optional')

    // An empty POST reaches the handler (404 for an unknown id), not a 400 for a missing body.
    const user = await createUser(app, 'editor')
    const complete = await app.inject({ method: 'POST', url: '/uploads/00000000000000000000000000/complete', headers: user.headers })
    t.equal(complete.statusCode, 404, `empty POST complete: ${complete.body}`)
    const ingest = await app.inject({ method: 'POST', url: '/documents/00000000000000000000000000/ingestions', headers: user.headers })
    t.equal(ingest.statusCode, 404, `empty POST ingest: ${ingest.body}`)
  })
})
