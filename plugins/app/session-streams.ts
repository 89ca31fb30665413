import fp from 'fastify-plugin'
import { lazySubscriber } from '../../src/redis.js'
import { authEventsChannel, checkSession, type Principal } from '../../src/domain/auth-state.js'
import { authDeps } from '../../src/domain/sessions.js'

/** What a streaming route registers: whose session it runs on, how to end it, and what it still needs. */
export interface StreamWatch {
  principal: Principal
  /** Ends the stream (idempotent); called at most once by this plugin. */
  end: () => void
  /** Re-checked with the user's fresh principal after a change to the user; false ends the stream. */
  stillAllowed?: (principal: Principal) => Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionStreams: {
      /** Ends `w` when its session is revoked or its user may no longer have it; resolves once the revocation feed is live; returns the unwatch. */
      watch: (w: StreamWatch) => Promise<() => void>
      /** Streams being watched on this process. */
      readonly size: number
    }
  }
}

/** Every watched stream is also re-checked this often: covers a pub/sub message lost in a Redis reconnect. */
const SWEEP_MS = 15_000

/**
 * Long-lived responses (the SSE stream) are authenticated once, when they start. This ends them
 * when their session dies: logout, DELETE /auth/sessions/:id, logout-all, password change,
 * refresh-token reuse, user disabled or deleted, an API key revoked (published on the auth-events channel by
 * publishSessionRevoked, on any API process), and re-checks them when the user's role or
 * permissions change (publishUserState). One subscriber connection per process, opened on the
 * first stream.
 */
export default fp(async (fastify) => {
  const deps = authDeps(fastify)
  const channel = authEventsChannel(fastify.redisKey)
  const bySession = new Map<string, Set<StreamWatch>>()

  const end = (w: StreamWatch): void => {
    remove(w)
    try { w.end() } catch (err) { fastify.log.warn({ err }, 'session streams: could not end a stream') }
  }

  function remove (w: StreamWatch): void {
    const set = bySession.get(w.principal.sid)
    if (set === undefined) return
    set.delete(w)
    if (set.size === 0) bySession.delete(w.principal.sid)
  }

  async function verify (w: StreamWatch): Promise<void> {
    try {
      // An API key's stream (sid `apikey:<id>`) is re-checked against the key, a session's against the session.
      const principal = w.principal.keyId !== undefined
        ? await fastify.apiKeyAuth.recheck(w.principal)
        : await checkSession(deps, w.principal.sid, w.principal.id).then(res => res.ok ? res.principal : null)
      if (principal === null || (w.stillAllowed !== undefined && !await w.stillAllowed(principal))) end(w)
    } catch (err) {
      fastify.log.debug({ err }, 'session streams: re-check failed; kept until the next one')
    }
  }

  function dispatch (raw: string): void {
    let msg: { sids?: unknown, uid?: unknown }
    try { msg = JSON.parse(raw) as typeof msg } catch { return }
    if (Array.isArray(msg.sids)) {
      for (const sid of msg.sids) for (const w of [...(bySession.get(String(sid)) ?? [])]) end(w)
    }
    if (typeof msg.uid === 'string') {
      for (const set of bySession.values()) for (const w of [...set]) if (w.principal.id === msg.uid) verify(w).catch(() => undefined)
    }
  }

  const subscriber = lazySubscriber(fastify.config, channel, (raw) => { dispatch(raw) }, (err) => fastify.log.debug({ err }, 'auth events subscriber error'))

  const sweep = setInterval(() => {
    for (const set of bySession.values()) for (const w of [...set]) verify(w).catch(() => undefined)
  }, SWEEP_MS)
  sweep.unref()

  fastify.decorate('sessionStreams', {
    watch: async (w: StreamWatch) => {
      await subscriber.ready()
      let set = bySession.get(w.principal.sid)
      if (set === undefined) bySession.set(w.principal.sid, set = new Set())
      set.add(w)
      // A revocation published between the request's authentication and the subscription: caught here.
      verify(w).catch(() => undefined)
      return () => remove(w)
    },
    get size () {
      let n = 0
      for (const s of bySession.values()) n += s.size
      return n
    },
  })

  fastify.addHook('onClose', async () => {
    clearInterval(sweep)
    subscriber.close()
  })
}, { name: 'session-streams', dependencies: ['config', 'db', 'redis', 'api-keys'] })
