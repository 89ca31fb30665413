import type { FastifyInstance } from 'fastify'
import { eq, sql } from 'drizzle-orm'
import { refreshTokens, sessions, users } from '../../drizzle/schema/index.js'
import { AppError, conflict, forbidden, unauthorized } from '../lib/errors.js'
import { randomToken, sha256Hex } from '../lib/tokens.js'
import { publishSessionRevoked } from './auth-state.js'
import { burnVerify, hashPassword, needsRehash, verifyPassword } from './passwords.js'
import { assertNotThrottled, clearAccount, recordFailure, type ThrottleDeps } from './login-throttle.js'
import { authDeps, createSession, revokeSession, revokeUserSessions, signAccessToken, type ClientMeta, type TokenPair } from './sessions.js'
import { findUserByEmail, insertUser, normalizeEmail, type UserRow } from './users.js'

export interface RequestMeta extends ClientMeta { ip: string }

const throttleDeps = (app: FastifyInstance): ThrottleDeps => ({
  redis: app.redis, key: app.redisKey, max: app.config.LOGIN_MAX_ATTEMPTS, windowSeconds: app.config.LOGIN_WINDOW_SECONDS, log: app.log,
})

/**
 * Creates an account. A taken email is 409 `email_taken` (the contract's answer, so it tells that
 * the account exists): each one counts as a failure on the login throttle's counters (per IP and
 * per account, shared with failed logins), so register cannot probe more accounts than login can,
 * and it is answered before any bcrypt work. Once throttled: 429 with Retry-After.
 */
export async function register (app: FastifyInstance, input: { email: string, password: string, name?: string }, meta: RequestMeta): Promise<UserRow> {
  if (!app.config.REGISTRATION_ENABLED) throw forbidden('Registration is closed on this server; ask an admin to create your account', 'registration_closed')
  const email = normalizeEmail(input.email)
  const deps = throttleDeps(app)
  await assertNotThrottled(deps, meta.ip, email)
  try {
    if (await findUserByEmail(app.db, email) !== undefined) throw conflict('A user with this email already exists; log in, or use another email', 'email_taken')
    return await insertUser(app.db, { email, name: input.name ?? null, passwordHash: await hashPassword(input.password, app.config.BCRYPT_COST) })
  } catch (err) {
    // also the unique index's answer to a concurrent registration with the same email
    if (err instanceof AppError && err.code === 'email_taken') await recordFailure(deps, meta.ip, email)
    throw err
  }
}

export type LoginResult =
  | { ok: true, user: UserRow, pair: TokenPair & { sessionId: string } }
  | { ok: false, userId: string | null, reason: 'unknown_email' | 'wrong_password' | 'disabled' }

/**
 * Checks the throttle (429), then the credentials. Unknown email, wrong password and disabled
 * account all cost one bcrypt verification and give the same answer to the caller; only the
 * result tells the route (for the audit log) which it was.
 */
export async function login (app: FastifyInstance, input: { email: string, password: string }, meta: RequestMeta): Promise<LoginResult> {
  const email = normalizeEmail(input.email)
  const deps = throttleDeps(app)
  await assertNotThrottled(deps, meta.ip, email)
  const user = await findUserByEmail(app.db, email)
  if (user === undefined) {
    await burnVerify(input.password, app.config.BCRYPT_COST)
    await recordFailure(deps, meta.ip, email)
    return { ok: false, userId: null, reason: 'unknown_email' }
  }
  const good = await verifyPassword(input.password, user.passwordHash)
  if (!good || user.disabled) {
    await recordFailure(deps, meta.ip, email)
    return { ok: false, userId: user.id, reason: good ? 'disabled' : 'wrong_password' }
  }
  await clearAccount(deps, meta.ip, email)
  if (needsRehash(user.passwordHash, app.config.BCRYPT_COST)) {
    const passwordHash = await hashPassword(input.password, app.config.BCRYPT_COST)
    await app.db.update(users).set({ passwordHash }).where(eq(users.id, user.id))
  }
  const pair = await createSession(app, user.id, meta)
  return { ok: true, user, pair }
}

export type RefreshResult =
  | { ok: true, userId: string, sessionId: string, pair: TokenPair }
  | { ok: false, reason: 'invalid' | 'revoked' | 'expired' | 'disabled' | 'reuse', userId?: string, sessionId?: string }

/**
 * Rotates a refresh token. The token row is locked (SELECT ... FOR UPDATE), so of two
 * concurrent refreshes with the same token one rotates it and the other then sees it rotated:
 * there is no grace window, the second is treated as reuse and revokes the session.
 * Reuse of a rotated token revokes the whole session (RFC 9700 reuse detection); the revocation
 * is committed, then published, then the caller answers 401.
 */
export async function rotateRefreshToken (app: FastifyInstance, token: string, meta: ClientMeta): Promise<RefreshResult> {
  const now = new Date()
  const next = randomToken()
  const result = await app.db.transaction(async (tx): Promise<RefreshResult> => {
    const [row] = await tx.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, sha256Hex(token))).for('update')
    if (row === undefined) return { ok: false, reason: 'invalid' }
    const [sess] = await tx.select().from(sessions).where(eq(sessions.id, row.sessionId)).for('update')
    if (sess === undefined) return { ok: false, reason: 'invalid' }
    const who = { userId: sess.userId, sessionId: sess.id }
    if (row.rotatedAt !== null) {
      if (sess.revokedAt !== null) return { ok: false, reason: 'revoked', ...who }
      await tx.update(sessions).set({ revokedAt: now, revokedReason: 'reuse' }).where(eq(sessions.id, sess.id))
      return { ok: false, reason: 'reuse', ...who }
    }
    if (sess.revokedAt !== null) return { ok: false, reason: 'revoked', ...who }
    if (sess.expiresAt <= now) return { ok: false, reason: 'expired', ...who }
    const [user] = await tx.select({ disabled: users.disabled }).from(users).where(eq(users.id, sess.userId))
    if (user === undefined || user.disabled) return { ok: false, reason: 'disabled', ...who }
    await tx.update(refreshTokens).set({ rotatedAt: now }).where(eq(refreshTokens.tokenHash, row.tokenHash))
    await tx.insert(refreshTokens).values({ tokenHash: sha256Hex(next), sessionId: sess.id, createdAt: now })
    await tx.update(sessions).set({ lastUsedAt: now, ip: meta.ip?.slice(0, 64) ?? sess.ip, userAgent: meta.userAgent?.slice(0, 512) ?? sess.userAgent })
      .where(eq(sessions.id, sess.id))
    return { ok: true, ...who, pair: { accessToken: '', refreshToken: next, tokenType: 'Bearer', expiresIn: app.config.ACCESS_TOKEN_TTL } }
  })
  if (result.ok) result.pair.accessToken = signAccessToken(app, result.userId, result.sessionId)
  else if (result.reason === 'reuse' && result.sessionId !== undefined) await publishSessionRevoked(authDeps(app), [result.sessionId])
  return result
}

/** Ends one of the user's sessions (logout, DELETE /auth/sessions/:id); false when it is not theirs. */
export async function endSession (app: FastifyInstance, userId: string, sessionId: string, reason: string): Promise<boolean> {
  const done = await revokeSession(app.db, userId, sessionId, reason)
  if (done) await publishSessionRevoked(authDeps(app), [sessionId])
  return done
}

/** Ends every session of a user, optionally but one; returns the ids revoked. */
export async function endAllSessions (app: FastifyInstance, userId: string, reason: string, exceptSessionId?: string): Promise<string[]> {
  const ids = await app.db.transaction(async (tx) => await revokeUserSessions(tx, userId, reason, exceptSessionId))
  await publishSessionRevoked(authDeps(app), ids)
  return ids
}

/**
 * Changes the caller's password after checking the current one (failures count towards the
 * login throttle, so a stolen access token cannot be used to guess the password). The other
 * sessions are revoked in the same transaction; the caller's own stays.
 */
export async function changePassword (app: FastifyInstance, userId: string, sessionId: string, current: string, next: string, meta: RequestMeta): Promise<{ revoked: string[] }> {
  const [user] = await app.db.select().from(users).where(eq(users.id, userId)).limit(1)
  if (user === undefined) throw unauthorized()
  const deps = throttleDeps(app)
  await assertNotThrottled(deps, meta.ip, user.email)
  if (!await verifyPassword(current, user.passwordHash)) {
    await recordFailure(deps, meta.ip, user.email)
    throw forbidden('The current password is wrong; send the password you log in with as currentPassword', 'invalid_credentials')
  }
  const passwordHash = await hashPassword(next, app.config.BCRYPT_COST)
  const revoked = await app.db.transaction(async (tx) => {
    await tx.update(users).set({ passwordHash, updatedAt: new Date(), authVersion: sql`${users.authVersion} + 1` }).where(eq(users.id, userId))
    return await revokeUserSessions(tx, userId, 'password_change', sessionId)
  })
  await publishSessionRevoked(authDeps(app), revoked)
  return { revoked }
}
