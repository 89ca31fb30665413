import type { MeDto, UserDto } from '../schemas/auth.js'
import { isDuplicate, likeContains } from '../lib/sql.js'
import { decodeIdCursor, encodeCursor } from '../lib/pagination.js'
import { and, desc, eq, inArray, isNull, like, lt, or, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../db.js'
import { documents, documentShares, refreshTokens, sessions, users } from '../../drizzle/schema/index.js'
import { badRequest, conflict, notFound } from '../lib/errors.js'
import { isId, newId } from '../lib/ids.js'
import { effectivePermissions, type Permission, type Role } from './permissions.js'
import { revokeUserSessions } from './sessions.js'
import { documentSubject, recordEvent, recordEvents, userSubject } from './webhooks/outbox.js'
import { toDocument } from './documents.js'
import { revokeUserKeys } from './api-keys/store.js'
import { chargeUsage } from './quota.js'

export type UserRow = typeof users.$inferSelect

/**
 * Emails are compared trimmed, lower-cased and in Unicode NFC: the one form stored, looked up and
 * used for the login throttle's key; the column compares bytes (utf8mb4_bin), as JS does.
 */
export const normalizeEmail = (email: string): string => email.trim().toLowerCase().normalize('NFC')

/** The API's shapes (src/schemas/auth.ts), derived from their TypeBox schemas. */
export type MeView = MeDto
export type UserView = UserDto

export function toMe (u: UserRow): MeView {
  return { id: u.id, email: u.email, name: u.name, role: u.role, permissions: effectivePermissions(u.role, u.grants, u.revokes), createdAt: u.createdAt.toISOString() }
}

export function toUserView (u: UserRow): UserView {
  return { ...toMe(u), kind: u.kind === 'service' ? 'service' : 'human', grants: u.grants, revokes: u.revokes, disabled: u.disabled, quotaBytes: u.quotaBytes, usedBytes: u.usedBytes, updatedAt: u.updatedAt.toISOString() }
}

export async function findUserByEmail (db: DbOrTx, email: string): Promise<UserRow | undefined> {
  const [u] = await db.select().from(users).where(eq(users.email, normalizeEmail(email))).limit(1)
  return u
}

/** Someone to share with, found by exact email: only enabled accounts (a disabled one is "no such user"). */
export async function lookupUserByEmail (db: DbOrTx, email: string): Promise<{ id: string, name: string | null, email: string } | undefined> {
  const u = await findUserByEmail(db, email)
  return u === undefined || u.disabled ? undefined : { id: u.id, name: u.name, email: u.email }
}

export async function getUser (db: DbOrTx, id: string): Promise<UserRow | undefined> {
  if (!isId(id)) return undefined
  const [u] = await db.select().from(users).where(eq(users.id, id)).limit(1)
  return u
}

export interface NewUser {
  email: string
  passwordHash: string
  name?: string | null
  role?: Role
  grants?: string[]
  revokes?: string[]
  /** 'service': an account for machines (no password, cannot log in, uses API keys) */
  kind?: UserKind
}

export type UserKind = 'human' | 'service'

/** Inserts a user; a taken email (after normalisation) is 409 email_taken, decided by the unique index. */
export async function insertUser (db: DbOrTx, input: NewUser): Promise<UserRow> {
  const now = new Date()
  const row: UserRow = {
    id: newId(),
    email: normalizeEmail(input.email),
    name: input.name ?? null,
    passwordHash: input.passwordHash,
    kind: input.kind ?? 'human',
    role: input.role ?? 'viewer',
    grants: [...new Set(input.grants ?? [])],
    revokes: [...new Set(input.revokes ?? [])],
    disabled: false,
    authVersion: 1,
    quotaBytes: null,
    usedBytes: 0,
    reservedBytes: 0,
    createdAt: now,
    updatedAt: now,
  }
  try {
    await db.transaction(async (tx) => {
      await tx.insert(users).values(row)
      await recordEvent(tx, { type: 'user.created', subject: userSubject(row.id), data: toUserView(row) }, now)
    })
  } catch (err) {
    if (isDuplicate(err)) throw conflict('A user with this email already exists; log in, or use another email', 'email_taken')
    throw err
  }
  return row
}

export { encodeCursor, decodeIdCursor } from '../lib/pagination.js'

export interface UserListQuery { limit: number, cursor?: string, role?: string, kind?: UserKind, q?: string }

/** Newest first (UUIDv7 ids sort by creation); the cursor is the last id of the page. */
export async function listUsers (db: DbOrTx, query: UserListQuery): Promise<{ items: UserView[], nextCursor: string | null }> {
  const conds = []
  if (query.cursor !== undefined) conds.push(lt(users.id, decodeIdCursor(query.cursor)))
  if (query.role !== undefined) conds.push(eq(users.role, query.role))
  if (query.kind !== undefined) conds.push(eq(users.kind, query.kind))
  if (query.q !== undefined && query.q !== '') {
    const pattern = likeContains(query.q)
    // emails are stored in canonical form and compared byte for byte (utf8mb4_bin): search that form
    conds.push(or(like(users.email, likeContains(normalizeEmail(query.q))), like(users.name, pattern)))
  }
  const rows = await db.select().from(users).where(and(...conds)).orderBy(desc(users.id)).limit(query.limit + 1)
  const page = rows.slice(0, query.limit)
  const last = page.at(-1)
  return { items: page.map(toUserView), nextCursor: rows.length > query.limit && last !== undefined ? encodeCursor(last.id) : null }
}

interface AdminLike { role: string, kind: string, disabled: boolean, revokes: string[] }
/** A person who can manage users: service accounts never count (nobody can log in as one). */
const isManagingAdmin = (u: AdminLike): boolean => u.role === 'admin' && u.kind !== 'service' && !u.disabled && !u.revokes.includes('users:manage')

/**
 * Locks every enabled admin row, then the target's. Every change that could remove an admin takes
 * the same locks in the same order, so two concurrent demotions serialize and the second one sees
 * the first one's result.
 */
async function lockForAdminChange (tx: DbOrTx, id: string): Promise<{ target: UserRow, otherManagers: number }> {
  const admins = await tx.select({ id: users.id, role: users.role, kind: users.kind, disabled: users.disabled, revokes: users.revokes })
    .from(users).where(and(eq(users.role, 'admin'), eq(users.disabled, false))).for('update')
  const [target] = await tx.select().from(users).where(eq(users.id, id)).for('update')
  if (target === undefined) throw notFound('User')
  return { target, otherManagers: admins.filter(a => a.id !== id && isManagingAdmin(a)).length }
}

export interface UserPatch { name?: string | null, role?: Role, grants?: Permission[], revokes?: Permission[], disabled?: boolean, quotaBytes?: number | null }

export type ChangedField = 'name' | 'role' | 'grants' | 'revokes' | 'disabled' | 'quotaBytes'
/** Fields whose change does not touch authorization (no auth_version bump, nothing published). */
const NOT_AUTH: ReadonlySet<ChangedField> = new Set(['name', 'quotaBytes'])
export interface UpdateResult { user: UserRow, changed: ChangedField[], authChanged: boolean, revokedSessions: string[] }

export async function updateUser (db: Db, id: string, patch: UserPatch): Promise<UpdateResult> {
  if (!isId(id)) throw notFound('User')
  return await db.transaction(async (tx) => {
    const { target, otherManagers } = await lockForAdminChange(tx, id)
    const next: UserRow = { ...target }
    if (patch.name !== undefined) next.name = patch.name
    if (patch.role !== undefined) next.role = patch.role
    if (patch.grants !== undefined) next.grants = [...new Set(patch.grants)]
    if (patch.revokes !== undefined) next.revokes = [...new Set(patch.revokes)]
    if (patch.disabled !== undefined) next.disabled = patch.disabled
    if (patch.quotaBytes !== undefined) next.quotaBytes = patch.quotaBytes
    const changed = (['name', 'role', 'grants', 'revokes', 'disabled', 'quotaBytes'] as ChangedField[])
      .filter(k => JSON.stringify(next[k]) !== JSON.stringify(target[k]))
    if (changed.length === 0) return { user: target, changed, authChanged: false, revokedSessions: [] }
    if (isManagingAdmin(target) && !isManagingAdmin(next) && otherManagers === 0) {
      throw conflict('This is the last admin: it cannot be demoted, disabled or lose users:manage; make another user admin first', 'last_admin')
    }
    const authChanged = changed.some(k => !NOT_AUTH.has(k))
    next.updatedAt = new Date()
    await tx.update(users).set({
      name: next.name,
      role: next.role,
      grants: next.grants,
      revokes: next.revokes,
      disabled: next.disabled,
      quotaBytes: next.quotaBytes,
      updatedAt: next.updatedAt,
      ...(authChanged ? { authVersion: sql`${users.authVersion} + 1` } : {}),
    }).where(eq(users.id, id))
    // Disabling ends every session: re-enabling later must not bring old tokens back to life.
    const revokedSessions = next.disabled && !target.disabled ? await revokeUserSessions(tx, id, 'disabled') : []
    return { user: next, changed, authChanged, revokedSessions }
  })
}

export interface DeleteResult { revokedSessions: string[], revokedKeys: string[], documentsTransferred: number, documentsTrashed: number }

/**
 * Deletes a user in one transaction: sessions revoked (and dropped), documents moved to
 * `transferTo` or sent to the trash, shares to the user removed. The caller publishes the
 * revocations after the commit.
 */
export async function deleteUser (db: Db, id: string, transferTo?: string): Promise<DeleteResult> {
  if (!isId(id)) throw notFound('User')
  if (transferTo !== undefined && transferTo === id) throw badRequest('transferTo must be the id of another user than the one being deleted', 'invalid_transfer_target')
  return await db.transaction(async (tx) => {
    const { target, otherManagers } = await lockForAdminChange(tx, id)
    if (isManagingAdmin(target) && otherManagers === 0) throw conflict('The last admin cannot be deleted; make another user admin first', 'last_admin')
    if (transferTo !== undefined) {
      const heir = isId(transferTo) ? (await tx.select({ id: users.id }).from(users).where(eq(users.id, transferTo)).for('update'))[0] : undefined
      if (heir === undefined) throw badRequest('transferTo is not the id of an existing user; check it with GET /users', 'invalid_transfer_target')
    }
    const revokedSessions = await revokeUserSessions(tx, id, 'user_deleted')
    const now = new Date()
    const revokedKeys = await revokeUserKeys(tx, id, 'user_deleted', now)
    let documentsTransferred = 0
    let documentsTrashed = 0
    // The documents this deletion changes, locked: each gets its event (document.updated with its new owner, or document.trashed).
    const affected = (await tx.select({ id: documents.id }).from(documents)
      .where(transferTo !== undefined ? eq(documents.ownerId, id) : and(eq(documents.ownerId, id), isNull(documents.deletedAt))).for('update')).map(d => d.id)
    if (transferTo !== undefined) {
      // The heir owns these now: a share they held on them is redundant.
      await tx.delete(documentShares).where(and(eq(documentShares.userId, transferTo),
        inArray(documentShares.documentId, tx.select({ id: documents.id }).from(documents).where(eq(documents.ownerId, id)))))
      const [res] = await tx.update(documents).set({ ownerId: transferTo, updatedAt: now, version: sql`${documents.version} + 1` })
        .where(eq(documents.ownerId, id))
      documentsTransferred = res.affectedRows
      // Their bytes count against the heir's quota now (they may take the heir over it: an admin's decision).
      await chargeUsage(tx, transferTo, target.usedBytes)
    } else {
      const [res] = await tx.update(documents).set({ deletedAt: now, updatedAt: now, version: sql`${documents.version} + 1` })
        .where(and(eq(documents.ownerId, id), isNull(documents.deletedAt)))
      documentsTrashed = res.affectedRows
    }
    await tx.delete(documentShares).where(eq(documentShares.userId, id))
    await tx.delete(refreshTokens).where(inArray(refreshTokens.sessionId, tx.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, id))))
    await tx.delete(sessions).where(eq(sessions.userId, id))
    await tx.delete(users).where(eq(users.id, id))
    for (let i = 0; i < affected.length; i += 500) {
      const rows = await tx.select().from(documents).where(inArray(documents.id, affected.slice(i, i + 500)))
      await recordEvents(tx, rows.map(r => ({ type: transferTo !== undefined ? 'document.updated' : 'document.trashed', subject: documentSubject(r.id), data: toDocument(r) })), now)
    }
    await recordEvent(tx, { type: 'user.deleted', subject: userSubject(id), data: toUserView(target) }, now)
    return { revokedSessions, revokedKeys, documentsTransferred, documentsTrashed }
  })
}

/** CLI and bootstrap: creates an admin, or reports that the email is taken (no changes then). */
export async function createAdmin (db: DbOrTx, email: string, passwordHash: string, name?: string): Promise<{ created: true, id: string } | { created: false }> {
  if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) throw badRequest('Not an email address (expected name@domain)', 'validation_failed')
  try {
    const u = await insertUser(db, { email, passwordHash, name: name ?? 'Administrator', role: 'admin' })
    return { created: true, id: u.id }
  } catch (err) {
    if ((err as { code?: string }).code === 'email_taken') return { created: false }
    throw err
  }
}
