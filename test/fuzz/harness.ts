// The fuzz runner shared by test/fuzz/*.test.ts (fixed seed, bounded) and scripts/fuzz.ts (random seed, long runs).
import { createHmac, randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { count, eq, inArray, max, sum } from 'drizzle-orm'
import { documents, documentShares, ingestions, sessions, uploads, users } from '../../drizzle/schema/index.js'
import { createUser, type TestUser } from '../helper.js'
import type { Role } from '../../src/domain/permissions.js'
import { cursorArb, encodeSegment, headerString, hostileString, idArb, jsonBodyArb, validValue, anyString } from './arbitraries.js'
import { checkResponse, documented } from './invariants.js'
import { encodeMultipart, multipartArb, TINY_PNG } from './multipart.js'
import { fetchOpenApi, operations, resolver, type JsonSchema, type OpenApiDoc, type Operation } from './operations.js'

export type AuthKind = Role | 'none' | 'garbage' | 'scheme' | 'expired' | 'wrongsig' | 'algnone' | 'unknownsession' | 'huge'

/** No token, broken tokens of every kind, and a viewer: none of these may change documents, shares or ingestions. */
export const READ_ONLY_AUTHS: AuthKind[] = ['none', 'garbage', 'scheme', 'expired', 'wrongsig', 'algnone', 'unknownsession', 'huge', 'viewer', 'viewer', 'viewer', 'viewer']
export const ALL_AUTHS: AuthKind[] = ['none', 'garbage', 'scheme', 'expired', 'wrongsig', 'algnone', 'unknownsession', 'huge',
  ...Array<AuthKind>(4).fill('viewer'), ...Array<AuthKind>(7).fill('editor'), ...Array<AuthKind>(7).fill('admin')]

/** Operations that end the caller's session: sent with a throwaway user so the fuzz keeps its tokens. */
const SESSION_ENDING = new Set(['POST /auth/logout', 'POST /auth/logout-all'])
/** Server-sent events stream until a final status: only bad ids (never a real one) are sent there. */
const STREAMING = /\/events$/
/** Multipart routes (their form fields are not a JSON schema). */
const MULTIPART = new Set(['POST /documents/', 'POST /documents'])
/** Raw-bytes routes. */
const RAW = new Set(['PUT /storage/{token}'])

export interface FuzzRequest {
  op: string
  method: string
  url: string
  auth: AuthKind
  headers: Record<string, string>
  payload?: string | Buffer
  note?: string
}

export interface Finding { op: string, request: string, status: number, body: string, problems: string[] }

export interface FuzzContext {
  app: FastifyInstance
  doc: OpenApiDoc
  ops: Operation[]
  resolve: (s: JsonSchema | undefined) => JsonSchema
  principals: Record<Role, TestUser>
  bystander: { user: TestUser, documentId: string | null }
  pools: { documents: string[], users: string[], ingestions: string[] }
  queueNames: string[]
  findings: Finding[]
  /** op -> status -> count */
  statuses: Map<string, Map<number, number>>
  undocumented: Map<string, Set<number>>
  sent: number
}

const b64u = (s: string): string => Buffer.from(s).toString('base64url')
function jwt (payload: Record<string, unknown>, secret: string, alg = 'HS256'): string {
  const head = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(payload))}`
  return alg === 'none' ? `${head}.` : `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`
}

export function summarize (r: FuzzRequest): string {
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.length > 120 ? `${v.slice(0, 120)}…(${v.length} chars)` : v]))
  let body = ''
  if (r.payload !== undefined) {
    const text = Buffer.isBuffer(r.payload) ? r.payload.toString('latin1') : r.payload
    body = ` body(${Buffer.byteLength(r.payload)} bytes)=${JSON.stringify(text.slice(0, 300))}`
  }
  const url = r.url.length > 300 ? `${r.url.slice(0, 300)}…(${r.url.length} chars)` : r.url
  return `${r.method} ${url} auth=${r.auth} headers=${JSON.stringify(headers)}${body}${r.note !== undefined ? ` [${r.note}]` : ''}`
}

async function uploadDocument (app: FastifyInstance, user: TestUser, fields: Record<string, string>, file: { name: string, data: Buffer | string }): Promise<string | null> {
  const boundary = `fz${randomUUID()}`
  const payload = encodeMultipart([...Object.entries(fields).map(([name, data]) => ({ name, data })), { name: 'file', filename: file.name, data: file.data }], boundary)
  const res = await app.inject({ method: 'POST', url: '/documents', headers: { ...user.headers, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload })
  return res.statusCode === 201 ? res.json<{ id: string }>().id : null
}

/** Users of each role, a bystander admin with a private document (never targeted), and real ids to aim at. */
export async function setupFuzz (app: FastifyInstance): Promise<FuzzContext> {
  const doc = await fetchOpenApi(app)
  const principals = { viewer: await createUser(app, 'viewer'), editor: await createUser(app, 'editor'), admin: await createUser(app, 'admin') }
  const bystander = await createUser(app, 'admin')
  const bystanderDoc = await uploadDocument(app, bystander, { title: 'bystander', visibility: 'private' }, { name: 'keep.txt', data: 'do not touch\n' })
  const sacrificial = [await createUser(app, 'viewer'), await createUser(app, 'editor')]
  const docIds: string[] = []
  for (const [owner, vis] of [[principals.editor, 'private'], [principals.editor, 'internal'], [principals.admin, 'private']] as const) {
    const id = await uploadDocument(app, owner, { title: `target ${vis}`, visibility: vis, tags: 'fuzz' }, { name: 'target.png', data: TINY_PNG })
    if (id !== null) docIds.push(id)
  }
  const ingestionIds: string[] = []
  for (const id of docIds.slice(0, 2)) {
    const res = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: principals.editor.headers, payload: {} })
    if (res.statusCode === 202) ingestionIds.push(res.json<{ id: string }>().id)
  }
  const queues = (app as unknown as { queues?: Record<string, unknown> }).queues
  return {
    app,
    doc,
    ops: operations(doc),
    resolve: resolver(doc),
    principals,
    bystander: { user: bystander, documentId: bystanderDoc },
    pools: { documents: docIds, users: sacrificial.map(u => u.id), ingestions: ingestionIds },
    queueNames: Object.keys(queues ?? {}),
    findings: [],
    statuses: new Map(),
    undocumented: new Map(),
    sent: 0,
  }
}

function pathParamArb (ctx: FuzzContext, op: Operation, name: string): fc.Arbitrary<string> {
  const streaming = STREAMING.test(op.path)
  let base: fc.Arbitrary<string>
  if (name === 'token') base = fc.oneof(hostileString, fc.uint8Array({ maxLength: 200 }).map(a => Buffer.from(a).toString('base64url')), fc.tuple(fc.string(), fc.string()).map(([a, b]) => `${b64u(a)}.${b64u(b)}`))
  else if (name === 'queue') base = fc.oneof(ctx.queueNames.length > 0 ? fc.constantFrom(...ctx.queueNames) : fc.constant('default'), hostileString)
  else if (name === 'jobId') base = fc.oneof(fc.nat().map(String), fc.constantFrom('repeat:x:1', '-1', '0'), hostileString)
  else if (op.path.startsWith('/documents/{id}') && name === 'id') base = idArb(ctx.pools.documents)
  else if (op.path.startsWith('/users/') || name === 'userId') base = idArb(ctx.pools.users)
  else if (op.path.startsWith('/ingestions/{id}') && !streaming) base = idArb(ctx.pools.ingestions)
  else base = idArb()
  return fc.tuple(base, fc.nat({ max: 5 })).map(([v, r]) => encodeSegment(r === 0)(v))
}

function queryValueArb (ctx: FuzzContext, name: string, schema: JsonSchema): fc.Arbitrary<string> {
  const valid = validValue(schema, ctx.resolve).map(v => typeof v === 'string' ? v : JSON.stringify(v) ?? '')
  if (name === 'cursor') return cursorArb
  if (schema.type === 'boolean') return fc.constantFrom('true', 'false', '1', '0', 'yes', '', 'TRUE', 'null')
  if (name === 'limit') return fc.oneof({ arbitrary: valid, weight: 2 }, fc.constantFrom('0', '101', '-1', 'abc', '1.5', '1e2', '', '99999999999999999999', '0x10', ' 5'))
  if (/Id$|^id$/.test(name)) return fc.oneof(valid, idArb([...ctx.pools.documents, ...ctx.pools.users]))
  return fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: hostileString, weight: 2 }, { arbitrary: fc.constantFrom('true', 'false', '1', '0', 'yes', '[]', '{}'), weight: 1 })
}

function queryArb (ctx: FuzzContext, op: Operation): fc.Arbitrary<string> {
  const pairs = op.params.filter(p => p.in === 'query').map(p => fc.oneof(
    { arbitrary: fc.constant(''), weight: 3 },
    { arbitrary: queryValueArb(ctx, p.name, p.schema).map(v => `${encodeURIComponent(p.name)}=${encodeSegment(false)(v)}`), weight: 2 },
    { arbitrary: fc.array(queryValueArb(ctx, p.name, p.schema), { minLength: 2, maxLength: 3 }).map(vs => vs.map(v => `${encodeURIComponent(p.name)}=${encodeSegment(false)(v)}`).join('&')), weight: 1 }
  ))
  const extra = fc.option(fc.oneof(
    fc.tuple(hostileString, hostileString).map(([k, v]) => `${encodeSegment(false)(k)}=${encodeSegment(false)(v)}`),
    fc.constantFrom('%zz=1', 'a=%', '&&&', '=', '__proto__[x]=1', 'limit[]=1', 'q=%00', 'a=' + 'b'.repeat(9000))
  ), { nil: '', freq: 4 })
  return fc.tuple(fc.tuple(...pairs), extra).map(([ps, e]) => [...ps, e].filter(s => s !== '').join('&'))
}

const headersArb: fc.Arbitrary<Record<string, string>> = fc.record({
  'x-request-id': fc.oneof(headerString, fc.constant('req-1'), fc.constant('a'.repeat(200))),
  range: fc.oneof(fc.constantFrom('bytes=0-0', 'bytes=-1', 'bytes=5-2', 'bytes=0-99999999999999999999', 'bytes=abc', 'bytes=0-1,2-3', 'items=0-1', 'bytes=-0', 'bytes=0-', 'bytes=' + '0-1,'.repeat(500)), headerString),
  'if-match': fc.oneof(fc.constantFrom('"1"', '"999"', '*', 'W/"1"', '"abc"', '1', '"-1"', '"1e3"', '"99999999999999999999"', '""', '"1", "2"'), headerString),
  'if-none-match': fc.oneof(fc.constantFrom('*', '"1"', 'W/"x"', '"' + 'f'.repeat(64) + '"'), headerString),
  'idempotency-key': fc.oneof(headerString, fc.constant('k'.repeat(5000))),
  accept: fc.constantFrom('text/html', '*/*', 'application/xml', 'garbage', ''),
  'x-junk': fc.integer({ min: 8_000, max: 100_000 }).map(n => 'j'.repeat(n)),
  'x-forwarded-for': fc.constantFrom('1.2.3.4', 'not-an-ip', '::1, 8.8.8.8', ''),
}, { requiredKeys: [] }).map(h => Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => typeof e[1] === 'string')))

type BodyCase = { contentType: string | undefined, payload: string | Buffer, note?: string } | null

function bodyArb (ctx: FuzzContext, op: Operation): fc.Arbitrary<BodyCase> {
  const limit = ctx.app.config.BODY_LIMIT
  if (MULTIPART.has(op.key)) {
    return fc.oneof(
      { arbitrary: multipartArb, weight: 8 },
      { arbitrary: jsonBodyArb({}, ctx.resolve, limit), weight: 1 },
      { arbitrary: fc.constant(null), weight: 1 }
    )
  }
  if (RAW.has(op.key)) {
    return fc.oneof(fc.uint8Array({ maxLength: 4096 }).map(a => ({ contentType: 'application/octet-stream', payload: Buffer.from(a) })), fc.constant(null))
  }
  const json = op.body['application/json']
  if (json !== undefined || Object.keys(op.body).length > 0) {
    return fc.oneof(
      { arbitrary: jsonBodyArb(json ?? {}, ctx.resolve, limit), weight: 10 },
      { arbitrary: multipartArb, weight: 1 },
      { arbitrary: fc.constant(null), weight: 1 }
    )
  }
  return fc.oneof(
    { arbitrary: fc.constant(null), weight: 6 },
    { arbitrary: fc.jsonValue({ maxDepth: 2 }).map(v => ({ contentType: 'application/json', payload: JSON.stringify(v) ?? 'null' })), weight: 1 },
    { arbitrary: anyString().map(p => ({ contentType: 'text/plain', payload: p })), weight: 1 }
  )
}

export function requestArb (ctx: FuzzContext, op: Operation, auths: AuthKind[]): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.params.filter(p => p.in === 'path')
  const pathArb = fc.tuple(...pathParams.map(p => pathParamArb(ctx, op, p.name))).map(values => {
    let path = op.path
    pathParams.forEach((p, i) => { path = path.replace(`{${p.name}}`, values[i] ?? '') })
    return path
  })
  return fc.record({
    path: pathArb,
    query: queryArb(ctx, op),
    auth: fc.constantFrom(...auths),
    headers: fc.option(headersArb, { nil: {}, freq: 3 }),
    body: bodyArb(ctx, op),
  }).map(({ path, query, auth, headers, body }) => {
    const h: Record<string, string> = { ...headers }
    if (body?.contentType !== undefined) h['content-type'] = body.contentType
    const req: FuzzRequest = { op: op.key, method: op.method, url: query === '' ? path : `${path}?${query}`, auth, headers: h, payload: body?.payload, note: body?.note }
    Object.defineProperty(req, fc.toStringMethod, { value: () => summarize(req), enumerable: false })
    return req
  })
}

async function authorization (ctx: FuzzContext, req: FuzzRequest): Promise<string | undefined> {
  const secret = ctx.app.config.JWT_SECRET
  const now = Math.floor(Date.now() / 1000)
  const p = ctx.principals.viewer
  switch (req.auth) {
    case 'none': return undefined
    case 'viewer': case 'editor': case 'admin':
      if (SESSION_ENDING.has(req.op)) return (await createUser(ctx.app, req.auth)).headers.authorization
      return ctx.principals[req.auth].headers.authorization
    case 'garbage': return `Bearer ${randomUUID()}.${randomUUID()}`
    case 'scheme': return ['Basic dXNlcjpwYXNz', 'bearer', 'Bearer', 'Bearer  x y', 'Token abc', `Bearer ${p.accessToken} extra`, `${p.accessToken}`, 'Bearer ' + '\u00ff'.repeat(10)][now % 8]
    case 'expired': return `Bearer ${jwt({ sub: p.id, sid: p.sessionId, iat: now - 7200, exp: now - 3600 }, secret)}`
    case 'wrongsig': return `Bearer ${jwt({ sub: p.id, sid: p.sessionId, iat: now, exp: now + 600 }, 'another-secret-another-secret-0123')}`
    case 'algnone': return `Bearer ${jwt({ sub: p.id, sid: p.sessionId, iat: now, exp: now + 600 }, secret, 'none')}`
    case 'unknownsession': return `Bearer ${jwt({ sub: randomUUID(), sid: randomUUID(), iat: now, exp: now + 600 }, secret)}`
    case 'huge': return `Bearer ${'a'.repeat(64 * 1024)}`
  }
}

const timeout = async <T>(p: Promise<T>, ms: number): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** Sends one request; returns the broken rules (and records statuses and findings). */
export async function send (ctx: FuzzContext, req: FuzzRequest, op?: Operation): Promise<string[]> {
  const headers = { ...req.headers }
  const auth = await authorization(ctx, req)
  if (auth !== undefined) headers.authorization = auth
  ctx.sent++
  let res
  try {
    res = await timeout(ctx.app.inject({ method: req.method as 'GET', url: req.url, headers, payload: req.payload }), 5_000)
  } catch (err) {
    const problems = [`inject failed: ${(err as Error).message}`]
    ctx.findings.push({ op: req.op, request: summarize(req), status: 0, body: '', problems })
    return problems
  }
  const byStatus = ctx.statuses.get(req.op) ?? new Map<number, number>()
  byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1)
  ctx.statuses.set(req.op, byStatus)
  if (op !== undefined && !documented(op.responses, res.statusCode)) {
    const set = ctx.undocumented.get(req.op) ?? new Set<number>()
    set.add(res.statusCode)
    ctx.undocumented.set(req.op, set)
  }
  const problems = checkResponse(res, req.method)
  if (problems.length > 0 && ctx.findings.length < 200) {
    ctx.findings.push({ op: req.op, request: summarize(req), status: res.statusCode, body: res.body.slice(0, 500), problems })
  }
  return problems
}

export interface OpResult { op: string, failed: boolean, message: string, runs: number }

/** Multipart uploads parse the most hostile input: they get more runs. */
export const runsFor = (op: Operation, base: number): number => MULTIPART.has(op.key) ? base * 4 : base

/** Runs one property over one operation. */
export async function fuzzOperation (ctx: FuzzContext, op: Operation, opts: { auths: AuthKind[], numRuns: number, seed: number, timeLimitMs?: number }): Promise<OpResult> {
  // Past the auth hook is where multipart parsing happens: mostly callers allowed to upload.
  const auths = MULTIPART.has(op.key) && opts.auths.includes('editor') ? ['none', 'viewer', 'garbage', 'editor', 'editor', 'editor', 'admin', 'admin'] as AuthKind[] : opts.auths
  const details = await fc.check(fc.asyncProperty(requestArb(ctx, op, auths), async (req) => {
    const problems = await send(ctx, req, op)
    if (problems.length > 0) throw new Error(problems.join('; '))
  }), { seed: opts.seed, numRuns: opts.numRuns, interruptAfterTimeLimit: opts.timeLimitMs ?? 30_000, markInterruptAsFailure: false })
  return { op: op.key, failed: details.failed, message: details.failed ? fc.defaultReportMessage(details) ?? 'failed' : '', runs: details.numRuns }
}

/** Operations the fuzz sends requests to (all documented ones). */
export const fuzzable = (ctx: FuzzContext): Operation[] => ctx.ops

export interface Snapshot { bystanderUser: unknown, bystanderDoc: unknown, bystanderSessions: unknown, tables: Record<string, unknown> }

export async function snapshot (ctx: FuzzContext): Promise<Snapshot> {
  const { db } = ctx.app
  const id = ctx.bystander.user.id
  const docId = ctx.bystander.documentId
  // Only rows of the fuzz's own users: other test files share the database and run alongside.
  const mine = [...Object.values(ctx.principals).map(p => p.id), id]
  const ownDocs = db.select({ id: documents.id }).from(documents).where(inArray(documents.ownerId, mine))
  const [docsAgg] = await db.select({ n: count(), versions: sum(documents.version), updated: max(documents.updatedAt) }).from(documents).where(inArray(documents.ownerId, mine))
  const [shares] = await db.select({ n: count() }).from(documentShares).where(inArray(documentShares.documentId, ownDocs))
  const [ings] = await db.select({ n: count(), updated: max(ingestions.createdAt) }).from(ingestions).where(inArray(ingestions.documentId, ownDocs))
  const [ups] = await db.select({ n: count() }).from(uploads).where(inArray(uploads.userId, mine))
  return {
    bystanderUser: await db.select().from(users).where(eq(users.id, id)),
    bystanderDoc: docId === null ? null : await db.select().from(documents).where(eq(documents.id, docId)),
    bystanderSessions: await db.select({ id: sessions.id, revokedAt: sessions.revokedAt }).from(sessions).where(eq(sessions.userId, id)),
    tables: { documents: docsAgg, shares, ingestions: ings, uploads: ups },
  }
}

/** A compact report: statuses per operation, undocumented statuses, findings. */
export function report (ctx: FuzzContext): string {
  const lines: string[] = [`${ctx.sent} requests`]
  for (const [op, m] of [...ctx.statuses.entries()].sort()) {
    lines.push(`  ${op}: ${[...m.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ')}`)
  }
  const undocumented = [...ctx.undocumented.entries()].map(([op, s]) => `${op} (${[...s].sort().join(', ')})`)
  if (undocumented.length > 0) lines.push(`statuses answered but not documented in OpenAPI: ${undocumented.join('; ')}`)
  return lines.join('\n')
}
