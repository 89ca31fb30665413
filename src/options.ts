import { randomUUID } from 'node:crypto'
import type { FastifyHttpOptions, FastifySchema, FastifySchemaCompiler, FastifyServerOptions } from 'fastify'
import type { IncomingMessage, Server } from 'node:http'
import { AjvCompiler } from '@fastify/ajv-compiler'
import type { Config } from './config.js'
import { sendError, toErrorBody } from './lib/error-reply.js'
import { lowercaseKeyword } from './lib/lowercase-keyword.js'
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
export function serverOptions (config: Config, extra: Partial<FastifyServerOptions> = {}): FastifyHttpOptions<Server> {
  return {
    logger: {
      level: config.LOG_LEVEL,
      // URLs are logged with their secrets cut out (signed storage URLs, pre-signed S3 parameters).
      serializers: { req: serializeRequest },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-quire-signature"]', 'req.headers["x-amz-security-token"]',
          'res.headers["set-cookie"]', 'res.headers.location', 'headers.authorization', 'headers.cookie', 'headers["x-quire-signature"]',
          'password', 'newPassword', 'currentPassword', 'refreshToken', 'accessToken', 'token', 'uploadUrl', 'downloadUrl',
          '*.password', '*.passwordHash', '*.refreshToken', '*.accessToken', '*.token', '*.downloadUrl', '*.uploadUrl',
          'secretHash', '*.secretHash'],
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
    // `x-lowercase`: ids (schemas/common.ts `Id`) are lower-cased as they are validated.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, keywords: [lowercaseKeyword] } },
    schemaController: { compilersFactory: { buildValidator: buildValidator as never } },
    return503OnClosing: true,
    // Autoload imports every plugin and route file within this budget: under `tsx` (dev:all, the
    // tests) on a busy 2-core machine that took over Fastify's default 10 s. A plugin that really
    // hangs still stops the start, only later.
    pluginTimeout: 60_000,
    // Router-level failures (bad URL encoding, over-long params) get the contract's error shape too.
    frameworkErrors: (err, request, reply) => {
      const e = err as Error & { statusCode?: number }
      if (e.statusCode === undefined || e.statusCode < 400) e.statusCode = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400
      sendError(reply, toErrorBody(e, request)).catch(() => undefined)
    },
    routerOptions: { maxParamLength: 2048 },
    forceCloseConnections: 'idle',
    // Slow clients cannot hold sockets: headers must arrive within HTTP_HEADERS_TIMEOUT_MS, a
    // socket silent both ways for HTTP_IDLE_TIMEOUT_MS is closed (a stalled body; a big upload
    // that keeps moving is not), and the whole request must arrive within the generous
    // HTTP_REQUEST_TIMEOUT_MS (a trickled body). Node checks the last two every
    // connectionsCheckingInterval, made short enough for the timeouts configured.
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: config.HTTP_REQUEST_TIMEOUT_MS > 0 ? Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS) : config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.HTTP_HEADERS_TIMEOUT_MS / 4))),
    },
    ...extra,
  }
}
