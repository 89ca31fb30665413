import { randomUUID } from 'node:crypto'
import type { FastifySchema, FastifySchemaCompiler, FastifyServerOptions } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { AjvCompiler } from '@fastify/ajv-compiler'
import type { Config } from './config.js'
import { sendError, toErrorBody } from './lib/error-reply.js'
import { serializeRequest } from './lib/log-redact.js'

const ajvCompilers = AjvCompiler()

/**
 * Query strings, params and headers arrive as text and are coerced to their schema's types;
 * JSON bodies are typed already, so a wrong type there (`{"title": 123}`) is a 400, not "123".
 * Unknown body properties are refused; unknown query parameters (cache busters such as `_=`)
 * are dropped on every route alike.
 */
function buildValidator (externalSchemas: unknown, ajvOptions: unknown): FastifySchemaCompiler<FastifySchema> {
  const options = ajvOptions as { customOptions: Record<string, unknown>, plugins?: unknown[] }
  const variant = (custom: Record<string, unknown>) =>
    ajvCompilers(externalSchemas as never, { ...options, customOptions: { ...options.customOptions, ...custom } } as never) as unknown as FastifySchemaCompiler<FastifySchema>
  const coercing = variant({})
  const strict = variant({ coerceTypes: false })
  const query = variant({ removeAdditional: true })
  return (route) => route.httpPart === 'body' ? strict(route) : route.httpPart === 'querystring' ? query(route) : coercing(route)
}

const SANE_ID = /^[\w.:@-]{1,128}$/

/** Fastify server options shared by the API, the worker and the tests. */
export function serverOptions (config: Config, extra: Partial<FastifyServerOptions> = {}): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      // URLs are logged with their secrets cut out (signed storage URLs, pre-signed S3 parameters).
      serializers: { req: serializeRequest },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-quire-signature"]', 'req.headers["x-amz-security-token"]',
          'res.headers["set-cookie"]', 'res.headers.location', 'headers.authorization', 'headers.cookie', 'headers["x-quire-signature"]',
          'password', 'newPassword', 'currentPassword', 'refreshToken', 'accessToken', 'token', 'uploadUrl', 'downloadUrl',
          '*.password', '*.passwordHash', '*.refreshToken', '*.accessToken', '*.token', '*.downloadUrl', '*.uploadUrl'],
        censor: '[redacted]',
      },
    },
    bodyLimit: config.BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    requestIdHeader: false,
    genReqId: (req: IncomingMessage) => {
      const h = req.headers['x-request-id']
      return typeof h === 'string' && SANE_ID.test(h) ? h : randomUUID()
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    schemaController: { compilersFactory: { buildValidator: buildValidator as never } },
    return503OnClosing: true,
    // Router-level failures (bad URL encoding, over-long params) get the contract's error shape too.
    frameworkErrors: (err, request, reply) => {
      const e = err as Error & { statusCode?: number }
      if (e.statusCode === undefined || e.statusCode < 400) e.statusCode = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400
      sendError(reply, toErrorBody(e, request)).catch(() => undefined)
    },
    routerOptions: { maxParamLength: 2048 },
    forceCloseConnections: 'idle',
    ...extra,
  }
}
