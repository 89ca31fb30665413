import type { RedisClient as Redis } from '../redis.js'
import type { Db } from '../db.js'
import type { AuditContext, RecordAudit } from './audit.js'
import { publishSessionRevoked, publishUserState } from './auth-state.js'
import { hashPassword } from './passwords.js'
import { deleteUser, insertUser, updateUser, type NewUser, type UserPatch, type UserRow } from './users.js'

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

  async function create (input: Omit<NewUser, 'passwordHash'> & { password: string }, ctx: AuditContext): Promise<UserRow> {
    const { password, ...rest } = input
    const user = await insertUser(db, { ...rest, passwordHash: await hashPassword(password, deps.bcryptCost) })
    await audit(ctx, { action: 'user.create', subject: `user:${user.id}`, payload: { email: user.email, role: user.role, grants: user.grants, revokes: user.revokes } })
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
    await publishUserState(deps, id)
    await audit(ctx, { action: 'user.delete', subject: `user:${id}`, payload: { transferTo: transferTo ?? null, ...res, revokedSessions: res.revokedSessions.length } })
  }

  return { create, update, remove }
}
