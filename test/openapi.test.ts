// The OpenAPI document is valid OpenAPI 3 and covers every route the app registers, with request and response schemas.
import { test } from 'tap'
import Fastify, { type RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import SwaggerParser from '@apidevtools/swagger-parser'
import app from '../src/app.js'
import { serverOptions } from '../src/options.js'
import { TEST_PLUGIN_TIMEOUT, testConfig } from './helper.js'
import type { OpenApiDoc } from './fuzz/operations.js'

/** Writes that take no body by design (everything else with POST/PUT/PATCH must document one). */
const NO_BODY = new Set([
  'POST /auth/logout', 'POST /auth/logout-all', 'POST /documents/{id}/restore', 'POST /documents/{id}/versions/{n}/restore', 'POST /ingestions/{id}/retry', 'POST /ingestions/{id}/cancel',
  'POST /admin/queues/{queue}/jobs/{id}/retry', 'POST /webhooks/{id}/test', 'POST /webhooks/{id}/deliveries/{deliveryId}/redeliver',
])
/** Public routes that take no input: a 2xx schema is enough (no auth errors, nothing to validate). */
const NO_INPUT_PUBLIC = new Set(['GET /health', 'GET /health/ready', 'GET /metrics'])

interface Collected { method: string, url: string, schema: Record<string, unknown> | undefined }

const toOpenApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, '{$1}')

test('the OpenAPI document is valid and covers every route', async (t) => {
  // buildApp's two lines, with an onRoute hook in place before any route is registered.
  const fastify = Fastify(serverOptions(testConfig(), { pluginTimeout: TEST_PLUGIN_TIMEOUT }))
  const routes: Collected[] = []
  fastify.addHook('onRoute', (r: RouteOptions) => {
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method: m.toUpperCase(), url: r.url, schema: r.schema as Record<string, unknown> | undefined })
  })
  await fastify.register(fp(app), { config: testConfig() })
  t.teardown(async () => await fastify.close())
  await fastify.ready()

  const res = await fastify.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json<OpenApiDoc>()
  t.match(doc.openapi, /^3\./, 'OpenAPI 3')

  await t.test('query parameters with a default are optional; multipart and raw uploads are documented', async (t) => {
    const list = doc.paths['/documents']?.get
    const params = new Map((list?.parameters ?? []).map(p => [p.name, p]))
    t.equal(params.get('limit')?.required, false, 'limit (default 20) is optional')
    t.equal(params.get('trashed')?.required, false, 'trashed (default false) is optional')
    const upload = doc.paths['/documents']?.post
    t.ok(upload?.requestBody?.content?.['multipart/form-data']?.schema, 'POST /documents documents its multipart parts')
    t.same(Object.keys(doc.paths).filter(p => p.length > 1 && p.endsWith('/')), [], 'paths are listed without a trailing slash')
    t.ok(doc.paths['/users'] && doc.paths['/ingestions'] && doc.paths['/audit-events'], 'collections under their plain names')
    t.ok(doc.paths['/storage/{token}']?.put?.requestBody?.content?.['application/octet-stream']?.schema, 'PUT /storage/{token} documents raw bytes')
  })

  await t.test('an external validator accepts it', async (t) => {
    try {
      await SwaggerParser.validate(structuredClone(doc) as never)
      t.pass('valid OpenAPI 3 (@apidevtools/swagger-parser)')
    } catch (err) {
      t.fail(`invalid OpenAPI document: ${(err as Error).message}`)
    }
  })

  await t.test('every route is documented with request and response schemas', async (t) => {
    const ours = routes.filter(r => r.method !== 'HEAD' && r.method !== 'OPTIONS' && !r.url.startsWith('/docs'))
    t.ok(ours.length >= 20, `${ours.length} routes registered`)
    const missing: string[] = []
    const problems: string[] = []
    for (const r of ours) {
      // Fastify registers a prefixed '/' route as both `/x` and `/x/`; the document lists one of them.
      const raw = toOpenApiPath(r.url)
      const path = [raw, `${raw}/`, raw.replace(/(.)\/$/, '$1')].find(p => doc.paths[p]?.[r.method.toLowerCase()] !== undefined) ?? raw
      const key = `${r.method} ${path}`
      const op = doc.paths[path]?.[r.method.toLowerCase()]
      if (op === undefined || r.schema === undefined || r.schema.hide === true) { missing.push(key); continue }
      const responses = Object.keys(op.responses ?? {})
      const gaps: string[] = []
      if (!responses.some(s => /^2\d\d$/.test(s))) gaps.push('no 2xx response schema')
      if (!NO_INPUT_PUBLIC.has(key)) {
        const errs = responses.filter(s => /^[45]\d\d$/.test(s))
        if (errs.length === 0) gaps.push('no error responses')
        if (!(Array.isArray(op.security) && op.security.length === 0) && !responses.includes('401')) gaps.push('no 401 response')
        const anyErrSchema = JSON.stringify(op.responses?.[errs[0] ?? ''] ?? {})
        if (errs.length > 0 && !/ErrorResponse|"requestId"/.test(anyErrSchema)) gaps.push(`${errs[0] ?? ''} response is not the ErrorResponse shape`)
      }
      const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map(m => m[1])
      const documentedParams = new Set((op.parameters ?? []).filter(p => p.in === 'path').map(p => p.name))
      for (const p of pathParams) if (p !== undefined && !documentedParams.has(p)) gaps.push(`path parameter {${p}} has no schema`)
      if (['POST', 'PUT', 'PATCH'].includes(r.method) && !NO_BODY.has(key)) {
        const content = op.requestBody?.content ?? {}
        if (Object.keys(content).length === 0) gaps.push('no request body schema')
        else if (Object.values(content).some(c => c.schema === undefined)) gaps.push('request body content without a schema')
      }
      if (gaps.length > 0) problems.push(`${key}: ${gaps.join(', ')}`)
    }
    const unique = (xs: string[]) => [...new Set(xs)]
    missing.splice(0, missing.length, ...unique(missing))
    problems.splice(0, problems.length, ...unique(problems))
    t.same(missing, [], `routes missing from /docs/json (or without a schema): ${missing.join('; ')}`)
    t.same(problems, [], `routes with schema gaps:\n  ${problems.join('\n  ')}`)
  })
})
