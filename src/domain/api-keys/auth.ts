import { eq } from 'drizzle-orm'
import type { RedisClient as Redis } from '../../redis.js'
import type { Db } from '../../db.js'
import { apiKeys } from '../../../drizzle/schema/index.js'
import { USER_TTL, authEventsChannel, loadUserState, principalFrom, type Principal, type UserAuthState } from '../auth-state.js'
import { parseKey, secretMatches } from '../../lib/api-key-format.js'
import { findKey, findKeyByPublicId, touchKey, type ApiKeyRow } from './store.js'

/**
 * The API key check on the hot path, built like the session check (src/domain/auth-state.ts):
 * Redis holds, per key, `akey:<id>` = owner id (live) or "0" (revoked), next to the owner's
 * `uauth:<uid>`; one MGET answers a request. What never changes about a key (owner, scopes,
 * expiry, secret hash) is kept in process, so a request reads no row. A revocation writes "0"
 * after its commit and is announced on the auth-events channel, so every process refuses the
 * key on its very next request, and ends the key's streams.
 */

export interface KeyAuthDeps {
  db: Db
  redis: Redis
  key: (...parts: string[]) => string
  clock: () => Date
  log: { warn: (obj: object, msg: string) => void }
}

/** How long `akey:<id>` lives in Redis; a miss is answered from MySQL. */
const STATE_TTL = 24 * 3600
const CACHE_MAX = 10_000
const TOUCH_EVERY_MS = 60_000

/** The immutable part of a key. */
export interface KnownKey { id: string, userId: string, scopes: string[], secretHash: string, expiresAt: number | null }

export type KeyFailure = 'invalid' | 'revoked' | 'expired' | 'owner_disabled'
export type KeyCheck = { ok: true, principal: Principal } | { ok: false, reason: KeyFailure, key?: KnownKey }

/** The pseudo session id of a key's principal: revoking the key ends its SSE streams like a logout. */
export const keySid = (keyId: string): string => `apikey:${keyId}`

const known = (k: ApiKeyRow): KnownKey => ({ id: k.id, userId: k.userId, scopes: k.scopes, secretHash: k.secretHash, expiresAt: k.expiresAt?.getTime() ?? null })

/** True once per `everyMs` per id (and per process): the throttle of writes that must not follow every request. */
export function throttle (everyMs: number, max = CACHE_MAX) {
  const last = new Map<string, number>()
  return (id: string, now: number): boolean => {
    const t = last.get(id)
    if (t !== undefined && now - t < everyMs) return false
    if (last.size >= max) last.clear()
    last.set(id, now)
    return true
  }
}

export function keyAuthenticator (deps: KeyAuthDeps) {
  const byPublicId = new Map<string, KnownKey>()
  const byId = new Map<string, KnownKey>()
  const touchDue = throttle(TOUCH_EVERY_MS)

  function remember (publicId: string, k: KnownKey): void {
    if (byPublicId.size >= CACHE_MAX) { byPublicId.clear(); byId.clear() }
    byPublicId.set(publicId, k)
    byId.set(k.id, k)
  }

  /** The key's live state and its owner's authorization state: Redis, or MySQL on a miss (then cached). */
  async function stateOf (k: KnownKey): Promise<{ live: boolean, user: UserAuthState | null }> {
    const stateKey = deps.key('akey', k.id)
    const userKey = deps.key('uauth', k.userId)
    let cached: Array<string | null> | null = null
    try {
      // Two GETs, not MGET: on a Redis Cluster the keys live in different slots (auto-pipelined: one round trip).
      cached = await Promise.all([deps.redis.get(stateKey), deps.redis.get(userKey)])
    } catch {
      cached = null // Redis down: MySQL alone decides
    }
    let live = cached?.[0] ?? null
    let user: UserAuthState | null = cached?.[1] != null ? JSON.parse(cached[1]) as UserAuthState : null
    if (live === null || user === null) {
      if (live === null) {
        const [row] = await deps.db.select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.id, k.id)).limit(1)
        live = row !== undefined && row.revokedAt === null ? k.userId : '0'
      }
      user = await loadUserState(deps.db, k.userId)
      if (cached !== null) {
        const state = live
        await Promise.all([
          deps.redis.set(stateKey, state, 'EX', STATE_TTL, 'NX'),
          ...(user !== null ? [deps.redis.set(userKey, JSON.stringify(user), 'EX', USER_TTL, 'NX')] : []),
        ]).catch(() => undefined)
      }
    }
    return { live: live === k.userId, user }
  }

  async function decide (k: KnownKey): Promise<KeyCheck> {
    const { live, user } = await stateOf(k)
    if (user === null || user.disabled) return { ok: false, reason: 'owner_disabled', key: k }
    if (!live) return { ok: false, reason: 'revoked', key: k }
    if (k.expiresAt !== null && k.expiresAt <= deps.clock().getTime()) return { ok: false, reason: 'expired', key: k }
    return { ok: true, principal: { ...principalFrom(k.userId, keySid(k.id), user, k.scopes), keyId: k.id } }
  }

  /** Checks a presented key; on success records its use (at most once a minute per key). */
  async function check (token: string, ip: string | null): Promise<KeyCheck> {
    const parts = parseKey(token)
    if (parts === null) return { ok: false, reason: 'invalid' }
    let k = byPublicId.get(parts.publicId)
    if (k === undefined) {
      const row = await findKeyByPublicId(deps.db, parts.publicId)
      if (row === undefined) return { ok: false, reason: 'invalid' }
      k = known(row)
      remember(row.publicId, k)
    }
    if (!secretMatches(parts.secret, k.secretHash)) return { ok: false, reason: 'invalid' }
    const res = await decide(k)
    const now = deps.clock()
    if (res.ok && touchDue(k.id, now.getTime())) {
      touchKey(deps.db, k.id, now, ip).catch((err: unknown) => deps.log.warn({ err, keyId: k.id }, 'api key: could not record its last use'))
    }
    return res
  }

  /** Re-checks a key principal (a long-lived stream's): false once the key or its owner can no longer be used. */
  async function recheck (keyId: string): Promise<KeyCheck> {
    let k = byId.get(keyId)
    if (k === undefined) {
      const row = await findKey(deps.db, keyId)
      if (row === undefined) return { ok: false, reason: 'invalid' }
      k = known(row)
      remember(row.publicId, k)
    }
    return await decide(k)
  }

  return { check, recheck }
}

export type KeyAuthenticator = ReturnType<typeof keyAuthenticator>

type PublishDeps = Pick<KeyAuthDeps, 'redis' | 'key'>

/** Call after a committed key creation, so its first request needs no DB read (NX: a revocation's "0" wins). */
export async function publishKeyActive (deps: PublishDeps, keyId: string, userId: string): Promise<void> {
  await deps.redis.set(deps.key('akey', keyId), userId, 'EX', STATE_TTL, 'NX').catch(() => undefined)
}

/** Call after a committed revocation: every API process refuses the keys on their next request and ends their streams. */
export async function publishKeysRevoked (deps: PublishDeps, keyIds: string[]): Promise<void> {
  if (keyIds.length === 0) return
  // The keys first, then the announcement (no MULTI: on a Redis Cluster the keys are in different slots).
  await Promise.all(keyIds.map(async id => await deps.redis.set(deps.key('akey', id), '0', 'EX', STATE_TTL)))
  await deps.redis.publish(authEventsChannel(deps.key), JSON.stringify({ sids: keyIds.map(keySid) }))
}
