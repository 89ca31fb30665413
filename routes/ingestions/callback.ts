import type { FastifyRequest } from 'fastify'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IdParam, errors } from '../../src/schemas/common.js'
import { CallbackBody, CallbackReply } from '../../src/schemas/ingestions.js'
import { MAX_SKEW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, callbackUrl, signedPath, verifySignature } from '../../src/domain/ingestion-signing.js'
import { AppError, badRequest, notFound, unauthorized } from '../../src/lib/errors.js'
import { isId } from '../../src/lib/ids.js'

/**
 * POST /ingestions/:id/callback — for the ingestion backend only. No bearer token: the request is
 * authenticated by `X-Quire-Signature: sha256=HMAC(INGESTION_SECRET, "<timestamp>\nPOST\n<path>\n<raw body>")`
 * where `<path>` is the path of the `callbackUrl` Quire gave for this ingestion, so the signature
 * is bound to the ingestion. This plugin has its own JSON parser that keeps the raw bytes, since
 * the MAC covers them exactly.
 */
const callbackRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const rawBodies = new WeakMap<FastifyRequest, Buffer>()
  const signatures = new WeakMap<FastifyRequest, string>()
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
      description: `Headers \`X-Quire-Timestamp\` (unix seconds, at most ${MAX_SKEW_SECONDS} s from our clock) and ` +
        '`X-Quire-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>\\nPOST\\n<path>\\n<raw body>")>`, `<path>` being the path of the `callbackUrl` sent with the ingestion (so a signature is valid for this ingestion only). ' +
        'Bad or stale signature: 401 `invalid_signature`. A signature already applied: 409 `callback_replayed`; the same signed request being applied right now: 409 `callback_in_progress` (retry it: it applies if that one failed). ' +
        'A callback that failed (5xx) is not remembered and may be delivered again; a refused one (4xx, e.g. 409 `invalid_transition`) is remembered like an applied one, so it cannot be replayed into a later attempt cycle. ' +
        'Legal transitions: queued/running -> succeeded/failed. Repeating the current final status (or calling back for a cancelled ingestion) is a no-op 200 with `changed: false`; succeeded <-> failed is 409 `invalid_transition`.',
      security: [],
      params: IdParam,
      // Checked in preValidation (401 before any validation); declared here for OpenAPI.
      headers: Type.Object({
        [TIMESTAMP_HEADER]: Type.String({ description: `unix seconds, at most ${MAX_SKEW_SECONDS} s from the server's clock` }),
        [SIGNATURE_HEADER]: Type.String({ description: '`sha256=<hex HMAC-SHA256(INGESTION_SECRET, "<timestamp>\\nPOST\\n<callback path>\\n<raw body>")>`' }),
      }),
      body: CallbackBody,
      response: { 200: CallbackReply, ...errors(400, 401, 404, 409, 413, 415, 500, 503) },
    },
    // Authenticate before validating, so an unsigned caller learns nothing about the body format.
    preValidation: async (request) => {
      const raw = rawBodies.get(request) ?? Buffer.alloc(0)
      // Ids are lower-case: the signature covers the canonical callback path, whatever case the URL used.
      const id = (request.params as { id: string }).id.toLowerCase()
      const target = { method: 'POST', path: signedPath(callbackUrl(fastify.config.PUBLIC_URL, encodeURIComponent(id))) }
      const check = verifySignature(fastify.config.INGESTION_SECRET, request.headers, target, raw)
      if (!check.ok) throw unauthorized(check.reason, 'invalid_signature')
      signatures.set(request, check.signature)
    },
  }, async (request) => {
    const { id } = request.params
    if (!isId(id)) throw notFound('Ingestion')
    const body = request.body
    if (body.ingestionId !== undefined && body.ingestionId.toLowerCase() !== id.toLowerCase()) throw badRequest('ingestionId does not match the URL', 'ingestion_mismatch')
    const out = await fastify.ingestions.receiveCallback(id, signatures.get(request)!, { status: body.status, result: body.result, error: body.error })
    request.log.info({ ingestionId: out.id, status: out.status, changed: out.changed }, 'ingestion callback')
    return out
  })
}

export default callbackRoute
