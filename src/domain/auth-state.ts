import { and, eq, isNull, gt } from 'drizzle-orm'
import type { RedisClient as Redis } from '../redis.js'
import type { Db } from '../db.js'
import { sessions, users } from '../../drizzle/schema/index.js'
import { effectivePermissions, type Permission } from './permissions.js'

/**
 * The revocation check on the hot path of every authenticated request.
 * Redis holds, per session, `sess:<sid>` = userId (active) or "0" (revoked) and, per user,
 * `uauth:<uid>` = the user's current authorization state. One MGET answers a request; a miss
 * falls back to MySQL and repopulates with SET NX, while every change writes through with a
 * plain SET *after* its DB commit, so a stale read can never overwrite a newer state.
 * Any process sees a logout or a role change on its very next request.
 */

export interface UserAuthState {
  email: string
  role: string
  grants: string[]
  revokes: string[]
  disabled: boolean
}

export interface Principal {
  id: string
  /** the session id; for an API key `apikey:<key id>` (ends its streams like a session's) */
  sid: string
  /** set when the request was authenticated with an API key (src/domain/api-keys/) */
  keyId?: string
  email: string
  role: string
  permissions: Permission[]
  /** for O(1) checks in hooks and domain functions */
  can: (p: Permission) => boolean
}

export interface AuthStateDeps {
  db: Db
  redis: Redis
  key: (...parts: string[]) => string
  sessionTtlSeconds: number
}

export const USER_TTL = 3600

export type CheckResult = { ok: true, principal: Principal } | { ok: false, reason: 'revoked' | 'disabled' }

const permCache = new Map<string, { perms: Permission[], set: Set<Permission> }>()

/** The user's principal; a key's `scopes` narrow its permissions (scopes ∩ the user's effective ones). */
export function principalFrom (uid: string, sid: string, s: UserAuthState, scopes?: readonly string[]): Principal {
  const cacheKey = `${s.role}|${s.grants.join(',')}|${s.revokes.join(',')}${scopes === undefined ? '' : `|${scopes.join(',')}`}`
  let entry = permCache.get(cacheKey)
  if (entry === undefined) {
    const all = effectivePermissions(s.role, s.grants, s.revokes)
    const perms = scopes === undefined ? all : all.filter(p => scopes.includes(p))
    entry = { perms, set: new Set(perms) }
    if (permCache.size > 1000) permCache.clear()
    permCache.set(cacheKey, entry)
  }
  const set = entry.set
  return { id: uid, sid, email: s.email, role: s.role, permissions: entry.perms, can: (p) => set.has(p) }
}

async function loadFromDb (deps: AuthStateDeps, sid: string, uid: string): Promise<{ active: boolean, user: UserAuthState | null }> {
  const now = new Date()
  const [sess] = await deps.db.select({ id: sessions.id }).from(sessions)
    .where(and(eq(sessions.id, sid), eq(sessions.userId, uid), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))).limit(1)
  const user = await loadUserState(deps.db, uid)
  return { active: sess !== undefined, user }
}

export async function loadUserState (db: Db, uid: string): Promise<UserAuthState | null> {
  const [u] = await db.select({ email: users.email, role: users.role, grants: users.grants, revokes: users.revokes, disabled: users.disabled })
    .from(users).where(eq(users.id, uid)).limit(1)
  return u === undefined ? null : { email: u.email, role: u.role, grants: u.grants ?? [], revokes: u.revokes ?? [], disabled: u.disabled }
}

export async function checkSession (deps: AuthStateDeps, sid: string, uid: string): Promise<CheckResult> {
  const sessKey = deps.key('sess', sid)
  const userKey = deps.key('uauth', uid)
  let cached: Array<string | null> | null = null
  try {
    // two GETs (auto-pipelined: one round trip), not MGET: on a Redis Cluster the keys live in different slots
    cached = await Promise.all([deps.redis.get(sessKey), deps.redis.get(userKey)])
  } catch {
    cached = null // Redis down: MySQL alone decides (slower, still correct)
  }
  let sessVal = cached?.[0] ?? null
  let user: UserAuthState | null = cached?.[1] != null ? JSON.parse(cached[1]) as UserAuthState : null
  if (sessVal === null || user === null) {
    const fromDb = await loadFromDb(deps, sid, uid)
    if (sessVal === null) sessVal = fromDb.active ? uid : '0'
    user = fromDb.user
    if (cached !== null) {
      await Promise.all([
        deps.redis.set(sessKey, sessVal, 'EX', deps.sessionTtlSeconds, 'NX'),
        user !== null ? deps.redis.set(userKey, JSON.stringify(user), 'EX', USER_TTL, 'NX') : null,
      ]).catch(() => undefined)
    }
  }
  if (sessVal !== uid || user === null) return { ok: false, reason: 'revoked' }
  if (user.disabled) return { ok: false, reason: 'disabled' }
  return { ok: true, principal: principalFrom(uid, sid, user) }
}

/**
 * Long-lived responses (SSE) are not re-authenticated per request: revocations and user changes
 * are also announced on this pub/sub channel, so every API process can end the streams they
 * concern at once (see plugins/app/session-streams.ts). Messages: `{"sids": [...]}` (sessions
 * revoked) and `{"uid": "..."}` (the user's authorization state changed: re-check).
 */
export const authEventsChannel = (key: (...parts: string[]) => string): string => key('auth-events')

/** Call after a committed session revocation (logout, reuse, password change, user delete). */
export async function publishSessionRevoked (deps: Pick<AuthStateDeps, 'redis' | 'key' | 'sessionTtlSeconds'>, sids: string[]): Promise<void> {
  if (sids.length === 0) return
  // The keys first, then the announcement: a process that re-checks on the message reads '0'.
  // Separate commands, not one MULTI: on a Redis Cluster the keys live in different slots.
  await Promise.all(sids.map(async sid => await deps.redis.set(deps.key('sess', sid), '0', 'EX', deps.sessionTtlSeconds)))
  await deps.redis.publish(authEventsChannel(deps.key), JSON.stringify({ sids }))
}

/** Call after a committed session creation, so the first request needs no DB read. */
export async function publishSessionActive (deps: Pick<AuthStateDeps, 'redis' | 'key' | 'sessionTtlSeconds'>, sid: string, uid: string): Promise<void> {
  // NX: the session id is new, so only a revocation can have written its key already; that '0'
  // must win even when this write reaches Redis after it (e.g. behind an auto-pipelined batch).
  await deps.redis.set(deps.key('sess', sid), uid, 'EX', deps.sessionTtlSeconds, 'NX').catch(() => undefined)
}

/** Call after a committed user change (role, grants, revokes, disable, delete): writes the new state through. */
export async function publishUserState (deps: Pick<AuthStateDeps, 'db' | 'redis' | 'key'>, uid: string): Promise<void> {
  const state = await loadUserState(deps.db, uid)
  const k = deps.key('uauth', uid)
  const value = state === null ? { email: '', role: 'viewer', grants: [], revokes: [], disabled: true } : state
  await deps.redis.set(k, JSON.stringify(value), 'EX', USER_TTL)
  await deps.redis.publish(authEventsChannel(deps.key), JSON.stringify({ uid }))
}
