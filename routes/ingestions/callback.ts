import type { FastifyRequest } from 'fastify'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IdParam, errors } from '../../src/schemas/common.js'
import { CallbackBody, CallbackReply } from '../../src/schemas/ingestions.js'
import { applyCallback } from '../../src/domain/ingestions.js'
import { MAX_SKEW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/domain/ingestion-signing.js'
import { AppError, badRequest, conflict, notFound, unauthorized } from '../../src/lib/errors.js'
import { isId } from '../../src/lib/ids.js'

/** Replayed signatures are remembered a bit longer than the timestamp window they could be valid in. */
const REPLAY_TTL_SECONDS = MAX_SKEW_SECONDS * 2 + 60

/**
 * POST /ingestions/:id/callback — for the ingestion backend only. No bearer token: the request is
 * authenticated by `X-Quire-Signature: sha256=HMAC(INGESTION_SECRET, "<X-Quire-Timestamp>.<raw body>")`.
 * This plugin has its own JSON parser that keeps the raw bytes, since the MAC covers them exactly.
 */
const callbackRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const rawBodies = new WeakMap<FastifyRequest, Buffer>()
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer
    rawBodies.set(request, raw)
    try {
      done(null, JSON.parse(raw.toString('utf8')))
    } catch {
      done(new AppError(400, 'invalid_json', 'Body is not valid JSON'), undefined)
    }
  })

  fastify.post('/:id/callback', {
    config: { public: true },
    schema: {
      tags: ['ingestions'],
      summary: 'Callback from the ingestion backend (HMAC-signed, not for users)',
      description: `Headers \`X-Quire-Timestamp\` (unix seconds, at most ${MAX_SKEW_SECONDS} s from our clock) and \`X-Quire-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>\`. ` +
        'Bad or stale signature: 401 `invalid_signature`. A signature seen before: 409 `callback_replayed`. ' +
        'Legal transitions: queued/running -> succeeded/failed. Repeating the current final status (or calling back for a cancelled ingestion) is a no-op 200 with `changed: false`; succeeded <-> failed is 409 `invalid_transition`.',
      security: [],
      params: IdParam,
      // Checked in preValidation (401 before any validation); declared here for OpenAPI.
      headers: Type.Object({
        [TIMESTAMP_HEADER]: Type.String({ description: `unix seconds, at most ${MAX_SKEW_SECONDS} s from the server's clock` }),
        [SIGNATURE_HEADER]: Type.String({ description: '`sha256=<hex HMAC-SHA256(INGESTION_SECRET, "<timestamp>.<raw body>")>`' }),
      }),
      body: CallbackBody,
      response: { 200: CallbackReply, ...errors(400, 401, 404, 409, 413, 415, 500, 503) },
    },
    // Authenticate before validating, so an unsigned caller learns nothing about the body format.
    preValidation: async (request) => {
      const raw = rawBodies.get(request) ?? Buffer.alloc(0)
      const check = verifySignature(fastify.config.INGESTION_SECRET, request.headers, raw)
      if (!check.ok) throw unauthorized(check.reason, 'invalid_signature')
      // Per ingestion: two callbacks with identical bodies in the same second are not replays of each other.
      const { id } = request.params as { id: string }
      const first = await fastify.redis.set(fastify.redisKey('ingestion-callback', id.slice(0, 64), check.signature.slice(7)), '1', 'EX', REPLAY_TTL_SECONDS, 'NX')
      if (first !== 'OK') throw conflict('This callback was already received (replay refused)', 'callback_replayed')
    },
  }, async (request) => {
    const { id } = request.params as { id: string }
    if (!isId(id)) throw notFound('Ingestion')
    const body = request.body
    if (body.ingestionId !== undefined && body.ingestionId !== id) throw badRequest('ingestionId does not match the URL', 'ingestion_mismatch')
    const out = await applyCallback(fastify, id, { status: body.status, result: body.result, error: body.error })
    request.log.info({ ingestionId: id, status: out.status, changed: out.changed }, 'ingestion callback')
    return out
  })
}

export default callbackRoute
