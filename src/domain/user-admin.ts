import type { RedisClient as Redis } from '../redis.js'
import type { Db } from '../db.js'
import type { AuditContext, RecordAudit } from './audit.js'
import { randomBytes } from 'node:crypto'
import { AppError, badRequest } from '../lib/errors.js'
import { publishSessionRevoked, publishUserState } from './auth-state.js'
import { publishKeysRevoked } from './api-keys/auth.js'
import { hashPassword } from './passwords.js'
import { deleteUser, insertUser, updateUser, type NewUser, type UserPatch, type UserRow } from './users.js'

export type NewAccount = Omit<NewUser, 'passwordHash' | 'email'> & { email?: string, password?: string }

/**
 * A service account's email: a unique placeholder in the reserved `.invalid` domain (RFC 2606),
 * so the column stays unique and non-null; nobody can log in with it (no password matches).
 */
const serviceEmail = (): string => `service-${randomBytes(8).toString('hex')}@service.invalid`

export interface UserAdminDeps {
  db: Db
  redis: Redis
  key: (...parts: string[]) => string
  sessionTtlSeconds: number
  bcryptCost: number
  audit: RecordAudit
}

/**
 * User administration (the routes gate `users:manage`): each change is committed, published (so
 * it applies to the user's very next request, on every process) and audited here.
 */
export function userAdmin (deps: UserAdminDeps) {
  const { db, audit } = deps

  /** A person (email and password), or a service account (`kind: 'service'`: a name, no email, no password). */
  async function create (input: NewAccount, ctx: AuditContext): Promise<UserRow> {
    const { password, email, ...rest } = input
    let user: UserRow
    if (input.kind === 'service') {
      if (email !== undefined || password !== undefined) throw badRequest('A service account has no email and no password (it cannot log in): send kind, name, role and grants only', 'validation_failed')
      if (input.name === undefined || input.name === null) throw badRequest('A service account needs a name', 'validation_failed')
      user = await insertUser(db, { ...rest, email: serviceEmail(), passwordHash: '' })
    } else {
      if (email === undefined || password === undefined) {
        const missing = email === undefined ? 'email' : 'password'
        throw new AppError(400, 'validation_failed', `Invalid body: /${missing} is required (a person has an email and a password; send kind: "service" for a machine account)`, [{ path: `/${missing}`, message: 'is required' }])
      }
      user = await insertUser(db, { ...rest, email, passwordHash: await hashPassword(password, deps.bcryptCost) })
    }
    await audit(ctx, { action: 'user.create', subject: `user:${user.id}`, payload: { email: user.email, kind: user.kind, role: user.role, grants: user.grants, revokes: user.revokes } })
    return user
  }

  async function update (id: string, patch: UserPatch, ctx: AuditContext): Promise<UserRow> {
    const res = await updateUser(db, id, patch)
    if (res.changed.length === 0) return res.user
    await publishSessionRevoked(deps, res.revokedSessions)
    if (res.authChanged) await publishUserState(deps, res.user.id)
    const after = Object.fromEntries(res.changed.map(k => [k, res.user[k]]))
    await audit(ctx, { action: 'user.update', subject: `user:${res.user.id}`, payload: { changed: after, sessionsRevoked: res.revokedSessions.length } })
    return res.user
  }

  async function remove (id: string, transferTo: string | undefined, ctx: AuditContext): Promise<void> {
    const res = await deleteUser(db, id, transferTo)
    await publishSessionRevoked(deps, res.revokedSessions)
    await publishKeysRevoked(deps, res.revokedKeys)
    await publishUserState(deps, id)
    await audit(ctx, { action: 'user.delete', subject: `user:${id}`, payload: { transferTo: transferTo ?? null, ...res, revokedSessions: res.revokedSessions.length, revokedKeys: res.revokedKeys.length } })
  }

  return { create, update, remove }
}
