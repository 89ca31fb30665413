import { eq, sql } from 'drizzle-orm'
import type { Config } from '../config.js'
import { refreshTokens, sessions, users } from '../../drizzle/schema/index.js'
import { AppError, conflict, forbidden, notFound, unauthorized } from '../lib/errors.js'
import { randomToken, sha256Hex } from '../lib/tokens.js'
import { publishSessionRevoked } from './auth-state.js'
import type { AuditContext, RecordAudit } from './audit.js'
import { burnVerify, hashPassword, needsRehash, verifyPassword } from './passwords.js'
import { assertNotThrottled, clearAccount, recordFailure, type ThrottleDeps } from './login-throttle.js'
import { authStateDeps, revokeSession, revokeUserSessions, sessionService, type ClientMeta, type SessionDeps, type TokenPair } from './sessions.js'
import { isId } from '../lib/ids.js'
import { findUserByEmail, insertUser, normalizeEmail, type UserRow } from './users.js'

export interface RequestMeta extends ClientMeta { ip: string }

export interface AuthServiceDeps extends SessionDeps {
  config: Pick<Config, 'REGISTRATION_ENABLED' | 'BCRYPT_COST' | 'LOGIN_MAX_ATTEMPTS' | 'LOGIN_WINDOW_SECONDS'>
  log: ThrottleDeps['log']
  audit: RecordAudit
}

/** The client of an audit context, as the session and throttle functions take it. */
const metaOf = (ctx: AuditContext): RequestMeta => ({ ip: ctx.ip ?? '', userAgent: ctx.userAgent })
const auditedEmail = (email: string): string => email.trim().toLowerCase().slice(0, 254)

/**
 * Accounts and sessions: register, login, refresh, logout, password change. Each action is
 * audited here (the routes only map the results to HTTP).
 */

export type LoginResult =
  | { ok: true, user: UserRow, pair: TokenPair & { sessionId: string } }
  | { ok: false, userId: string | null, reason: 'unknown_email' | 'wrong_password' | 'disabled' | 'service_account' }

export type RefreshResult =
  | { ok: true, userId: string, sessionId: string, pair: TokenPair }
  | { ok: false, reason: 'invalid' | 'revoked' | 'expired' | 'disabled' | 'reuse', userId?: string, sessionId?: string }

export function authService (deps: AuthServiceDeps) {
  const { db, config, audit } = deps
  const throttle: ThrottleDeps = { redis: deps.redis, key: deps.key, max: config.LOGIN_MAX_ATTEMPTS, windowSeconds: config.LOGIN_WINDOW_SECONDS, log: deps.log }
  const sessionsOf = sessionService(deps)
  const stateDeps = authStateDeps(deps)

  /**
   * Creates an account. A taken email is 409 `email_taken` (the contract's answer, so it tells that
   * the account exists): each one counts as a failure on the login throttle's counters (per IP and
   * per account, shared with failed logins), so register cannot probe more accounts than login can,
   * and it is answered before any bcrypt work. Once throttled: 429 with Retry-After.
   */
  async function register (input: { email: string, password: string, name?: string }, ctx: AuditContext): Promise<UserRow> {
    if (!config.REGISTRATION_ENABLED) throw forbidden('Registration is closed on this server; ask an admin to create your account', 'registration_closed')
    const email = normalizeEmail(input.email)
    const { ip } = metaOf(ctx)
    await assertNotThrottled(throttle, ip, email)
    let user: UserRow
    try {
      if (await findUserByEmail(db, email) !== undefined) throw conflict('A user with this email already exists; log in, or use another email', 'email_taken')
      user = await insertUser(db, { email, name: input.name ?? null, passwordHash: await hashPassword(input.password, config.BCRYPT_COST) })
    } catch (err) {
      // also the unique index's answer to a concurrent registration with the same email
      if (err instanceof AppError && err.code === 'email_taken') {
        await recordFailure(throttle, ip, email)
        await audit(ctx, { action: 'auth.register_failed', actorId: null, subject: null, payload: { email: auditedEmail(input.email), reason: 'email_taken' } })
      }
      throw err
    }
    await audit(ctx, { action: 'auth.register', actorId: user.id, subject: `user:${user.id}`, payload: { email: user.email } })
    return user
  }

  /**
   * Checks the throttle (429), then the credentials. Unknown email, wrong password and disabled
   * account all cost one bcrypt verification and give the same answer (401 invalid_credentials);
   * only the audit log tells which it was.
   */
  async function login (input: { email: string, password: string }, ctx: AuditContext): Promise<{ user: UserRow, pair: TokenPair & { sessionId: string } }> {
    const res = await checkCredentials(input, metaOf(ctx))
    if (!res.ok) {
      await audit(ctx, { action: 'auth.login_failed', actorId: null, subject: res.userId !== null ? `user:${res.userId}` : null, payload: { email: auditedEmail(input.email), reason: res.reason } })
      throw unauthorized('Wrong email or password', 'invalid_credentials')
    }
    await audit(ctx, { action: 'auth.login', actorId: res.user.id, subject: `session:${res.pair.sessionId}` })
    return res
  }

  async function checkCredentials (input: { email: string, password: string }, meta: RequestMeta): Promise<LoginResult> {
    const email = normalizeEmail(input.email)
    await assertNotThrottled(throttle, meta.ip, email)
    const user = await findUserByEmail(db, email)
    if (user === undefined) {
      await burnVerify(input.password, config.BCRYPT_COST)
      await recordFailure(throttle, meta.ip, email)
      return { ok: false, userId: null, reason: 'unknown_email' }
    }
    if (user.kind === 'service') {
      // A service account has no password: it cannot log in (it uses API keys).
      await burnVerify(input.password, config.BCRYPT_COST)
      await recordFailure(throttle, meta.ip, email)
      return { ok: false, userId: user.id, reason: 'service_account' }
    }
    const good = await verifyPassword(input.password, user.passwordHash)
    if (!good || user.disabled) {
      await recordFailure(throttle, meta.ip, email)
      return { ok: false, userId: user.id, reason: good ? 'disabled' : 'wrong_password' }
    }
    await clearAccount(throttle, meta.ip, email)
    if (needsRehash(user.passwordHash, config.BCRYPT_COST)) {
      const passwordHash = await hashPassword(input.password, config.BCRYPT_COST)
      await db.update(users).set({ passwordHash }).where(eq(users.id, user.id))
    }
    const pair = await sessionsOf.createSession(user.id, meta)
    return { ok: true, user, pair }
  }

  /** Rotates a refresh token into a new pair, or throws the 401 that says why not (a reuse is audited). */
  async function refresh (token: string, ctx: AuditContext): Promise<TokenPair> {
    const res = await rotateRefreshToken(token, metaOf(ctx))
    if (res.ok) return res.pair
    if (res.reason === 'reuse') {
      deps.log.warn({ sessionId: res.sessionId, requestId: ctx.requestId }, 'refresh token reuse: session revoked')
      await audit(ctx, { action: 'auth.refresh_reuse', actorId: res.userId ?? null, subject: `session:${res.sessionId ?? ''}` })
    }
    if (res.reason === 'invalid') throw unauthorized('Invalid refresh token; log in again with POST /auth/login')
    if (res.reason === 'disabled') throw unauthorized('This account is disabled; ask an admin to enable it')
    if (res.reason === 'expired') throw unauthorized('Session expired, log in again', 'token_expired')
    throw unauthorized('This session was ended (logout, password change, token reuse or an admin); log in again', 'token_revoked')
  }

  /**
   * Rotates a refresh token. The token row is locked (SELECT ... FOR UPDATE), so of two
   * concurrent refreshes with the same token one rotates it and the other then sees it rotated:
   * there is no grace window, the second is treated as reuse and revokes the session.
   * Reuse of a rotated token revokes the whole session (RFC 9700 reuse detection); the revocation
   * is committed, then published, then the caller answers 401.
   */
  async function rotateRefreshToken (token: string, meta: ClientMeta): Promise<RefreshResult> {
    const now = deps.clock()
    const next = randomToken()
    const result = await db.transaction(async (tx): Promise<RefreshResult> => {
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
      return { ok: true, ...who, pair: { accessToken: '', refreshToken: next, tokenType: 'Bearer', expiresIn: deps.accessTtlSeconds } }
    })
    if (result.ok) result.pair.accessToken = sessionsOf.signAccessToken(result.userId, result.sessionId)
    else if (result.reason === 'reuse' && result.sessionId !== undefined) await publishSessionRevoked(stateDeps, [result.sessionId])
    return result
  }

  /** Ends the caller's session (logout). */
  async function logout (ctx: AuditContext, sessionId: string): Promise<void> {
    if (ctx.actorId === null) throw unauthorized()
    await endSession(ctx.actorId, sessionId, 'logout')
    await audit(ctx, { action: 'auth.logout', subject: `session:${sessionId}` })
  }

  /** Ends every session of the caller. */
  async function logoutAll (ctx: AuditContext): Promise<void> {
    if (ctx.actorId === null) throw unauthorized()
    const ids = await endAllSessions(ctx.actorId, 'logout_all')
    await audit(ctx, { action: 'auth.logout_all', subject: `user:${ctx.actorId}`, payload: { sessions: ids.length } })
  }

  /** DELETE /auth/sessions/:id: ends one of the caller's sessions (404 when it is not theirs, or already ended). */
  async function revokeOwnSession (ctx: AuditContext, sessionId: string): Promise<void> {
    if (ctx.actorId === null) throw unauthorized()
    if (!isId(sessionId) || !await endSession(ctx.actorId, sessionId, 'revoked_by_user')) throw notFound('Session')
    await audit(ctx, { action: 'auth.session_revoke', subject: `session:${sessionId}` })
  }

  async function endSession (userId: string, sessionId: string, reason: string): Promise<boolean> {
    const done = await revokeSession(db, userId, sessionId, reason)
    if (done) await publishSessionRevoked(stateDeps, [sessionId])
    return done
  }

  async function endAllSessions (userId: string, reason: string, exceptSessionId?: string): Promise<string[]> {
    const ids = await db.transaction(async (tx) => await revokeUserSessions(tx, userId, reason, exceptSessionId))
    await publishSessionRevoked(stateDeps, ids)
    return ids
  }

  /**
   * Changes the caller's password after checking the current one (failures count towards the
   * login throttle, so a stolen access token cannot be used to guess the password). The other
   * sessions are revoked in the same transaction; the caller's own (`sessionId`) stays.
   */
  async function changePassword (ctx: AuditContext, sessionId: string, current: string, next: string): Promise<{ revoked: string[] }> {
    const userId = ctx.actorId
    const [user] = userId === null ? [] : await db.select().from(users).where(eq(users.id, userId)).limit(1)
    if (user === undefined) throw unauthorized()
    const { ip } = metaOf(ctx)
    await assertNotThrottled(throttle, ip, user.email)
    if (!await verifyPassword(current, user.passwordHash)) {
      await recordFailure(throttle, ip, user.email)
      throw forbidden('The current password is wrong; send the password you log in with as currentPassword', 'invalid_credentials')
    }
    const passwordHash = await hashPassword(next, config.BCRYPT_COST)
    const revoked = await db.transaction(async (tx) => {
      await tx.update(users).set({ passwordHash, updatedAt: deps.clock(), authVersion: sql`${users.authVersion} + 1` }).where(eq(users.id, user.id))
      return await revokeUserSessions(tx, user.id, 'password_change', sessionId)
    })
    await publishSessionRevoked(stateDeps, revoked)
    await audit(ctx, { action: 'auth.password_change', subject: `user:${user.id}`, payload: { sessionsRevoked: revoked.length } })
    return { revoked }
  }

  return { register, login, refresh, logout, logoutAll, revokeOwnSession, changePassword }
}

export type AuthService = ReturnType<typeof authService>
