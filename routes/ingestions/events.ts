import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IdParam, authErrors, errors, textResponse } from '../../src/schemas/common.js'
import { actorContext } from '../../plugins/app/ingestions.js'
import { isFinal, type StatusMessage } from '../../src/domain/ingestion-events.js'
import { notFound, unauthorized, unavailable } from '../../src/lib/errors.js'

const HEARTBEAT_MS = 15_000

/**
 * GET /ingestions/:id/events — Server-Sent Events. The current status first, then every status
 * change and attempt (`event: status`, data `{id, status, type, message, at}`), fed through Redis
 * pub/sub so it works on any API process; the stream ends after a final status. `: ping` comments
 * keep proxies from closing an idle stream. It also ends, after an `event: revoked`, as soon as
 * its session dies or its user loses access (plugins/app/session-streams.ts).
 */
const ingestionEvents: FastifyPluginAsyncTypebox = async (fastify) => {
  const open = new Set<ServerResponse>()
  // SSE connections are never idle: end them so a graceful shutdown does not wait for clients.
  fastify.addHook('preClose', async () => { for (const res of open) res.end() })

  fastify.get('/:id/events', {
    config: { permission: 'ingestions:read', rateLimit: false },
    schema: {
      tags: ['ingestions'],
      summary: 'Stream status changes (text/event-stream) until a final status',
      params: IdParam,
      // Only the stream is text/event-stream: errors before it starts are JSON like everywhere.
      description: 'Ends after a final status, or with `event: revoked` (data `{"code":"token_revoked","message"}`) as soon as the session is revoked or the user loses access.',
      response: { 200: textResponse('text/event-stream', 'event: status\\ndata: {"id","status","type","message","at"}; event: revoked\\ndata: {"code","message"}'), ...authErrors, ...errors(404) },
    },
  }, async (request, reply) => {
    const found = await fastify.ingestions.loadFor(actorContext(request), request.params.id)
    if (found === null) throw notFound('Ingestion')
    const id = found.row.id
    const res = reply.raw
    let ended = false
    let started = false
    // assigned once the stream starts; `finish` may run before that
    let heartbeat: NodeJS.Timeout | null = null
    let unsubscribe = (): void => {}
    let unwatch = (): void => {}
    const finish = (): void => {
      if (ended) return
      ended = true
      if (heartbeat !== null) clearInterval(heartbeat)
      unsubscribe()
      unwatch()
      open.delete(res)
      if (started && !res.writableEnded) res.end()
    }
    // The session died (logout, revocation, user disabled or deleted) or the user may no longer
    // read the ingestion: say so, then end (a client that reconnects gets the 401/404).
    const revoke = (): void => {
      if (started && !ended) res.write('event: revoked\ndata: {"code":"token_revoked","message":"The session ended or lost access to this ingestion"}\n\n')
      finish()
    }
    const send = (msg: StatusMessage): void => {
      if (ended) return
      res.write(`event: status\ndata: ${JSON.stringify(msg)}\n\n`)
      if (isFinal(msg.status)) finish()
    }
    // Subscribe before reading the snapshot, so no change can fall between the two.
    const pending: StatusMessage[] = []
    let live = false
    try {
      unsubscribe = await fastify.ingestionEvents.subscribe(id, (msg) => { if (live) send(msg); else pending.push(msg) })
      unwatch = await fastify.sessionStreams.watch({
        principal: request.user,
        end: revoke,
        stillAllowed: async (p) => p.can('ingestions:read') && await fastify.ingestions.loadFor(actorContext(request, p), id) !== null,
      })
    } catch (err) {
      unsubscribe()
      request.log.warn({ err }, 'ingestion events: subscriber unavailable')
      throw unavailable('Live events are unavailable, retry later')
    }
    const row = await fastify.ingestions.find(id).catch((err: unknown) => { finish(); throw err })
    if (ended) throw unauthorized('This session was ended (logout, password change or an admin); log in again', 'token_revoked')
    reply.hijack()
    started = true
    // Hijacked, Fastify writes none of the reply's headers (the security headers among them): passed here.
    res.writeHead(200, {
      ...(reply.getHeaders() as OutgoingHttpHeaders),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
    })
    heartbeat = setInterval(() => { if (!ended) res.write(': ping\n\n') }, HEARTBEAT_MS)
    open.add(res)
    request.raw.on('close', finish)
    res.on('error', finish)
    const snapshot = row ?? found.row
    res.write('retry: 3000\n\n')
    send({ id, status: snapshot.status, type: 'snapshot', message: `current status: ${snapshot.status}`, at: snapshot.updatedAt.toISOString() })
    live = true
    for (const msg of pending) send(msg)
  })
}

export default ingestionEvents
