import { STATUS_CODES } from 'node:http'
import type { ErrorCode } from './error-codes.js'

export { ERROR_CODES, type ErrorCode } from './error-codes.js'

/** An error with a stable, snake_case `code` that clients can switch on. */
export class AppError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: Array<{ path: string, message: string }>,
    readonly headers?: Record<string, string>
  ) {
    super(message)
    this.name = 'AppError'
  }
}

export const badRequest = (message: string, code: ErrorCode = 'bad_request') => new AppError(400, code, message)
export const unauthorized = (message = 'Authentication required; log in with POST /auth/login', code: ErrorCode = 'unauthorized') => new AppError(401, code, message)
export const forbidden = (message = 'You are not allowed to do this', code: ErrorCode = 'forbidden') => new AppError(403, code, message)
/** 403 `forbidden` naming the permission the caller lacks (and who can grant it). */
export const missingPermission = (permission: string) =>
  forbidden(`This requires the ${permission} permission, which your account does not have; ask an admin to grant it`)
export const notFound = (what = 'Resource') => new AppError(404, 'not_found', `${what} not found`)
export const conflict = (message: string, code: ErrorCode = 'conflict') => new AppError(409, code, message)
export const unavailable = (message = 'Service temporarily unavailable', code: ErrorCode = 'service_unavailable') => new AppError(503, code, message)

export const statusText = (status: number): string => STATUS_CODES[status] ?? 'Error'

/** Maps Fastify's and its plugins' own error codes to ours. */
export const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_VALIDATION: 'validation_failed',
  FST_REQ_FILE_TOO_LARGE: 'payload_too_large',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'unsupported_media_type',
  FST_PROTO_VIOLATION: 'bad_request',
  FST_ERR_BAD_URL: 'bad_url',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: 'unauthorized',
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: 'token_expired',
  FST_JWT_AUTHORIZATION_TOKEN_INVALID: 'unauthorized',
  FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED: 'unauthorized',
  FST_JWT_BAD_REQUEST: 'unauthorized',
  FST_JWT_BAD_COOKIE_REQUEST: 'unauthorized',
}

/** Generic codes by status, for errors that carry only a status. */
export const codeForStatus = (status: number): ErrorCode => {
  switch (status) {
    case 400: return 'bad_request'
    case 401: return 'unauthorized'
    case 403: return 'forbidden'
    case 404: return 'not_found'
    case 405: return 'method_not_allowed'
    case 406: return 'not_acceptable'
    case 409: return 'conflict'
    case 410: return 'gone'
    case 412: return 'precondition_failed'
    case 413: return 'payload_too_large'
    case 414: return 'uri_too_long'
    case 415: return 'unsupported_media_type'
    case 416: return 'range_not_satisfiable'
    case 429: return 'rate_limited'
    case 503: return 'service_unavailable'
    default: return status >= 500 ? 'internal_error' : 'bad_request'
  }
}
