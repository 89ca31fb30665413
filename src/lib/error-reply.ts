import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, FASTIFY_CODES, codeForStatus, statusText, type ErrorCode } from './errors.js'

const DB_DOWN = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET', 'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR', 'POOL_CLOSED', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'POOL_ENQUEUELIMIT'])

export function isInfraDown (err: unknown): boolean {
  const e = err as { code?: string, name?: string, message?: string, cause?: unknown }
  if (e === null || typeof e !== 'object') return false
  if (e.code !== undefined && DB_DOWN.has(e.code)) return true
  if (e.name === 'MaxRetriesPerRequestError') return true
  const m = e.message ?? ''
  if (/Connection is closed|Stream isn't writeable|enableOfflineQueue|connect ECONNREFUSED/.test(m)) return true
  return e.cause !== undefined && e.cause !== err ? isInfraDown(e.cause) : false
}

/** What busboy (under @fastify/multipart) throws for a malformed or truncated multipart body: plain errors, no status. */
const MULTIPART_PARSE = /^(Unexpected end of multipart data|Multipart: Boundary not found|Boundary required|(Part|Field|File) terminated early due to unexpected end of multipart data|Unsupported Content-Type\.|Missing Content-Type-header\.|The needle cannot (be an empty String\/Buffer|have a length bigger than 256)\.)$/

export function isMultipartParseError (err: unknown): boolean {
  const e = err as { statusCode?: unknown, message?: unknown }
  return e !== null && typeof e === 'object' && e.statusCode === undefined && typeof e.message === 'string' && MULTIPART_PARSE.test(e.message)
}

/** @fastify/multipart's count limits: a malformed request (413 is for size), answered as validation errors. */
const MULTIPART_COUNTS: Record<string, { path: string, message: string }> = {
  FST_FILES_LIMIT: { path: '/file', message: 'exactly one file part is allowed' },
  FST_FIELDS_LIMIT: { path: '/', message: 'too many fields' },
  FST_PARTS_LIMIT: { path: '/', message: 'too many parts' },
}

/** The parts of an ajv error we read. */
interface AjvIssue { keyword?: string, instancePath?: string, schemaPath?: string, params?: Record<string, unknown>, message?: string }

const list = (values: unknown[]): string => values.map(v => typeof v === 'string' ? v : JSON.stringify(v)).join(', ')

/** The value at a JSON pointer into what was validated, when it is a short string (to echo a typo back). */
function received (data: unknown, pointer: string): string | null {
  let v = data
  for (const part of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return null
    v = (v as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return typeof v === 'string' && v.length <= 100 ? JSON.stringify(v) : null
}

/** The subschema at an ajv schemaPath (`#/properties/a/anyOf`) of the route's schema, if it can be followed. */
function schemaAt (root: unknown, schemaPath: string): unknown {
  let v = root
  for (const part of schemaPath.replace(/^#/, '').split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return v
}

/** The values a union of literals allows (a TypeBox enum such as a permission or role name), else null. */
function literalsOf (anyOf: unknown): unknown[] | null {
  if (!Array.isArray(anyOf) || anyOf.length === 0) return null
  const values = anyOf.map(b => b !== null && typeof b === 'object' && 'const' in b ? (b as { const: unknown }).const : undefined)
  return values.every(v => v !== undefined) ? values : null
}

/**
 * ajv's errors as `{ path, message }` lines a person can act on. A union of literals fails with
 * one error per literal plus "must match a schema in anyOf": those become one line listing the
 * values allowed. `schema` is what was validated against (the route's body, querystring... schema).
 */
export function validationDetails (issues: AjvIssue[], data?: unknown, schema?: unknown): Array<{ path: string, message: string }> {
  const out: Array<{ path: string, message: string }> = []
  const consumed = new Set<AjvIssue>()
  const unions = new Map<AjvIssue, unknown[]>()
  for (const issue of issues) {
    if (issue.keyword !== 'anyOf' || issue.schemaPath === undefined) continue
    const branches = issues.filter(i => i !== issue && i.instancePath === issue.instancePath && i.schemaPath?.startsWith(`${issue.schemaPath}/`) === true)
    const values = literalsOf(schemaAt(schema, issue.schemaPath)) ??
      (branches.length > 0 && branches.every(b => b.keyword === 'const') ? branches.map(b => b.params?.allowedValue) : null)
    if (values === null) continue
    unions.set(issue, values)
    for (const b of branches) consumed.add(b)
  }
  for (const issue of issues) {
    if (consumed.has(issue)) continue
    const params = issue.params ?? {}
    const base = issue.instancePath ?? ''
    const at = base === '' ? '/' : base
    const values = unions.get(issue)
    if (values !== undefined) {
      const got = received(data, base)
      out.push({ path: at, message: got !== null ? `${got} is not allowed; use one of: ${list(values)}` : `must be one of: ${list(values)}` })
    } else if (typeof params.missingProperty === 'string') {
      out.push({ path: `${base}/${params.missingProperty}`, message: 'is required' })
    } else if (typeof params.additionalProperty === 'string') {
      out.push({ path: `${base}/${params.additionalProperty}`, message: 'unknown property' })
    } else if (issue.keyword === 'enum' && Array.isArray(params.allowedValues)) {
      out.push({ path: at, message: `must be one of: ${list(params.allowedValues)}` })
    } else {
      out.push({ path: at, message: issue.message ?? 'is invalid' })
    }
  }
  return out
}

export interface ErrorBody {
  statusCode: number
  error: string
  code: ErrorCode
  message: string
  requestId: string
  details?: Array<{ path: string, message: string }>
}

export function toErrorBody (err: FastifyError | AppError | Error, request: FastifyRequest): ErrorBody {
  const requestId = String(request.id)
  if (err instanceof AppError) {
    const body: ErrorBody = { statusCode: err.statusCode, error: statusText(err.statusCode), code: err.code, message: err.message, requestId }
    if (err.details !== undefined) body.details = err.details
    return body
  }
  const fe = err as FastifyError
  if (Array.isArray(fe.validation)) {
    const where = fe.validationContext ?? 'request'
    const schema = (request.routeOptions?.schema as Record<string, unknown> | undefined)?.[where]
    const details = validationDetails(fe.validation as AjvIssue[], (request as unknown as Record<string, unknown>)[where === 'querystring' ? 'query' : where], schema)
    const what = details.map(d => d.path === '/' ? d.message : `${d.path} ${d.message}`).join('; ')
    return { statusCode: 400, error: 'Bad Request', code: 'validation_failed', message: `Invalid ${where}: ${what}`, requestId, details }
  }
  const counted = fe.code !== undefined ? MULTIPART_COUNTS[fe.code] : undefined
  if (counted !== undefined) {
    return { statusCode: 400, error: 'Bad Request', code: 'validation_failed', message: `Invalid multipart body: ${counted.message}`, requestId, details: [counted] }
  }
  if (isMultipartParseError(err)) {
    return { statusCode: 400, error: 'Bad Request', code: 'invalid_multipart', message: `Malformed multipart body: ${err.message}`, requestId }
  }
  if (isInfraDown(err)) {
    return { statusCode: 503, error: statusText(503), code: 'service_unavailable', message: 'A backing service is unavailable, retry later', requestId }
  }
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500
  if (status >= 500) {
    return { statusCode: status, error: statusText(status), code: codeForStatus(status), message: 'Internal error; quote the request id when reporting it', requestId }
  }
  const code = (fe.code !== undefined ? FASTIFY_CODES[fe.code] : undefined) ?? codeForStatus(status)
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const type = String(request.headers['content-type'] ?? '').split(';')[0]?.trim().slice(0, 100) ?? ''
    return { statusCode: status, error: statusText(status), code, message: `Content-Type "${type}" is not accepted here (JSON bodies are application/json)`, requestId }
  }
  return { statusCode: status, error: statusText(status), code, message: fe.message, requestId }
}

export async function sendError (reply: FastifyReply, body: ErrorBody, headers?: Record<string, string>) {
  if (headers !== undefined) reply.headers(headers)
  reply.header('x-request-id', body.requestId)
  // A download route may have set its own type before failing.
  reply.removeHeader('content-disposition')
  return await reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
}
