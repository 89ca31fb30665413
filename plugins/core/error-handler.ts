import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { AppError } from '../../src/lib/errors.js'
import { sendError, toErrorBody } from '../../src/lib/error-reply.js'

export default fp(async (fastify) => {
  fastify.setErrorHandler(async (err: FastifyError, request, reply) => {
    const body = toErrorBody(err, request)
    if (body.statusCode >= 500) request.log.error({ err, requestId: request.id }, 'request failed')
    else request.log.info({ code: body.code, statusCode: body.statusCode }, body.message)
    if (reply.sent || reply.raw.headersSent) return
    // Failed while the body was still streaming in (storage error mid-upload, too large...): the rest
    // will not be read, so close the connection after the reply. Otherwise the client stays stuck
    // sending into a paused socket until the keep-alive timeout (72 s), holding up graceful shutdown.
    if (request.raw.complete === false) reply.header('connection', 'close')
    return await sendError(reply, body, err instanceof AppError ? err.headers : undefined)
  })

  fastify.setNotFoundHandler(async (request, reply) => {
    return await sendError(reply, {
      statusCode: 404, error: 'Not Found', code: 'not_found', message: `Route ${request.method} ${request.url.split('?')[0]} not found; the routes are listed at /docs`, requestId: String(request.id),
    })
  })
}, { name: 'error-handler' })
