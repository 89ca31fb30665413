import { and, desc, eq, gt, inArray, isNull, ne } from 'drizzle-orm'
import type { RedisClient as Redis } from '../redis.js'
import type { Config } from '../config.js'
import type { Db, DbOrTx } from '../db.js'
import { refreshTokens, sessions } from '../../drizzle/schema/index.js'
import { newId } from '../lib/ids.js'
import { randomToken, sha256Hex } from '../lib/tokens.js'
import { publishSessionActive } from './auth-state.js'

export interface AccessTokenPayload {
  sub: string
  sid: string
}

export interface TokenPair {
  accessToken: string
  refreshToken: string
  tokenType: 'Bearer'
  expiresIn: number
}

export interface ClientMeta {
  ip?: string | null
  userAgent?: string | null
}

/** What the session functions need; `sessionDeps` takes them from the app (or anything shaped like it). */
export interface SessionDeps {
  db: Db
  redis: Redis
  key: (...parts: string[]) => string
  /** signs an access token (@fastify/jwt's `sign`, configured with ACCESS_TOKEN_TTL) */
  signAccess: (payload: AccessTokenPayload) => string
  accessTtlSeconds: number
  refreshTtlSeconds: number
  clock: () => Date
}

/** The app's pieces the domain services are built from (a FastifyInstance has them). */
export interface AppDeps {
  db: Db
  redis: Redis
  redisKey: (...parts: string[]) => string
  config: Config
  jwt: { sign: (payload: AccessTokenPayload) => string }
}

export const sessionDeps = (app: AppDeps): SessionDeps => ({
  db: app.db,
  redis: app.redis,
  key: app.redisKey,
  signAccess: (payload) => app.jwt.sign(payload),
  accessTtlSeconds: app.config.ACCESS_TOKEN_TTL,
  refreshTtlSeconds: app.config.REFRESH_TOKEN_TTL,
  clock: () => new Date(),
})

/** The pieces the auth-state functions need. */
export const authStateDeps = (deps: Pick<SessionDeps, 'db' | 'redis' | 'key' | 'refreshTtlSeconds'>) =>
  ({ db: deps.db, redis: deps.redis, key: deps.key, sessionTtlSeconds: deps.refreshTtlSeconds })

/** The pieces the auth-state functions need, taken from the app. */
export function authDeps (app: Pick<AppDeps, 'db' | 'redis' | 'redisKey'> & { config: Pick<Config, 'REFRESH_TOKEN_TTL'> }) {
  return { db: app.db, redis: app.redis, key: app.redisKey, sessionTtlSeconds: app.config.REFRESH_TOKEN_TTL }
}

export function sessionService (deps: SessionDeps) {
  const signAccessToken = (userId: string, sessionId: string): string => deps.signAccess({ sub: userId, sid: sessionId })

  /** Opens a session for a user who has just proven who they are, and returns its first token pair. */
  async function createSession (userId: string, meta: ClientMeta = {}): Promise<TokenPair & { sessionId: string }> {
    const now = deps.clock()
    const sessionId = newId()
    const refreshToken = randomToken()
    await deps.db.transaction(async (tx) => {
      await tx.insert(sessions).values({
        id: sessionId,
        userId,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: new Date(now.getTime() + deps.refreshTtlSeconds * 1000),
        ip: meta.ip?.slice(0, 64) ?? null,
        userAgent: meta.userAgent?.slice(0, 512) ?? null,
      })
      await tx.insert(refreshTokens).values({ tokenHash: sha256Hex(refreshToken), sessionId, createdAt: now })
    })
    await publishSessionActive(authStateDeps(deps), sessionId, userId)
    return { sessionId, accessToken: signAccessToken(userId, sessionId), refreshToken, tokenType: 'Bearer', expiresIn: deps.accessTtlSeconds }
  }

  return { signAccessToken, createSession }
}

/** Opens a session (tests, seed, bench): `sessionService(sessionDeps(app)).createSession`. */
export const createSession = async (app: AppDeps, userId: string, meta: ClientMeta = {}): Promise<TokenPair & { sessionId: string }> =>
  await sessionService(sessionDeps(app)).createSession(userId, meta)

export const signAccessToken = (app: AppDeps, userId: string, sessionId: string): string =>
  sessionService(sessionDeps(app)).signAccessToken(userId, sessionId)

/**
 * Marks a user's live sessions revoked inside the caller's transaction and returns their ids;
 * the caller publishes them (publishSessionRevoked) after the commit.
 */
export async function revokeUserSessions (tx: DbOrTx, userId: string, reason: string, exceptSessionId?: string): Promise<string[]> {
  const conds = [eq(sessions.userId, userId), isNull(sessions.revokedAt)]
  if (exceptSessionId !== undefined) conds.push(ne(sessions.id, exceptSessionId))
  const rows = await tx.select({ id: sessions.id }).from(sessions).where(and(...conds)).for('update')
  const ids = rows.map(r => r.id)
  if (ids.length > 0) await tx.update(sessions).set({ revokedAt: new Date(), revokedReason: reason }).where(inArray(sessions.id, ids))
  return ids
}

/** Revokes one session of a user; false when it is not theirs, or already revoked. */
export async function revokeSession (tx: DbOrTx, userId: string, sessionId: string, reason: string): Promise<boolean> {
  const [res] = await tx.update(sessions).set({ revokedAt: new Date(), revokedReason: reason })
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
  return res.affectedRows > 0
}

export interface SessionView {
  id: string
  createdAt: string
  lastUsedAt: string
  expiresAt: string
  ip: string | null
  userAgent: string | null
  current: boolean
}

/** The user's live sessions, newest first. */
export async function listActiveSessions (db: DbOrTx, userId: string, currentSessionId: string): Promise<SessionView[]> {
  const rows = await db.select().from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, new Date())))
    .orderBy(desc(sessions.id)).limit(200)
  return rows.map(s => ({
    id: s.id,
    createdAt: s.createdAt.toISOString(),
    lastUsedAt: s.lastUsedAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    ip: s.ip,
    userAgent: s.userAgent,
    current: s.id === currentSessionId,
  }))
}
