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
    const details = fe.validation.map(v => {
      const missing = v.params as { missingProperty?: string, additionalProperty?: string } | undefined
      let path = v.instancePath ?? ''
      if (missing?.missingProperty !== undefined) path += `/${missing.missingProperty}`
      if (missing?.additionalProperty !== undefined) {
        path += `/${missing.additionalProperty}`
        return { path, message: 'unknown property' }
      }
      return { path: path === '' ? '/' : path, message: v.message ?? 'invalid' }
    })
    const where = fe.validationContext ?? 'request'
    return { statusCode: 400, error: 'Bad Request', code: 'validation_failed', message: `Invalid ${where}: ${details.map(d => `${d.path} ${d.message}`).join('; ')}`, requestId, details }
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
