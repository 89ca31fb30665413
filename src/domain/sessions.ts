import type { FastifyInstance } from 'fastify'
import { and, desc, eq, gt, inArray, isNull, ne } from 'drizzle-orm'
import type { DbOrTx } from '../db.js'
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

export function signAccessToken (app: FastifyInstance, userId: string, sessionId: string): string {
  const payload: AccessTokenPayload = { sub: userId, sid: sessionId }
  return app.jwt.sign(payload)
}

/** Opens a session for a user who has just proven who they are, and returns its first token pair. */
export async function createSession (app: FastifyInstance, userId: string, meta: ClientMeta = {}): Promise<TokenPair & { sessionId: string }> {
  const now = new Date()
  const sessionId = newId()
  const refreshToken = randomToken()
  await app.db.transaction(async (tx) => {
    await tx.insert(sessions).values({
      id: sessionId,
      userId,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: new Date(now.getTime() + app.config.REFRESH_TOKEN_TTL * 1000),
      ip: meta.ip?.slice(0, 64) ?? null,
      userAgent: meta.userAgent?.slice(0, 512) ?? null,
    })
    await tx.insert(refreshTokens).values({ tokenHash: sha256Hex(refreshToken), sessionId, createdAt: now })
  })
  await publishSessionActive(authDeps(app), sessionId, userId)
  return { sessionId, accessToken: signAccessToken(app, userId, sessionId), refreshToken, tokenType: 'Bearer', expiresIn: app.config.ACCESS_TOKEN_TTL }
}

/** The pieces the auth-state functions need, taken from the app. */
export function authDeps (app: FastifyInstance) {
  return { db: app.db, redis: app.redis, key: app.redisKey, sessionTtlSeconds: app.config.REFRESH_TOKEN_TTL }
}

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
