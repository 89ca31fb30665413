import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm'
import type { DbOrTx } from '../../db.js'
import { apiKeys } from '../../../drizzle/schema/index.js'
import { decodeIdCursor, pageOf } from '../../lib/pagination.js'
import { isId } from '../../lib/ids.js'
import type { ApiKeyDto } from '../../schemas/api-keys.js'
import { keyPrefix } from '../../lib/api-key-format.js'

/** The api_keys table: the only module that writes it. */

export type ApiKeyRow = typeof apiKeys.$inferSelect
export type ApiKeyView = ApiKeyDto

export const keyStatus = (k: Pick<ApiKeyRow, 'revokedAt' | 'expiresAt'>, now: Date): ApiKeyView['status'] =>
  k.revokedAt !== null ? 'revoked' : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : 'active'

/** What the API shows of a key after its creation: never the secret, nor its hash. */
export function toApiKeyView (k: ApiKeyRow, now = new Date()): ApiKeyView {
  const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()
  return {
    id: k.id,
    name: k.name,
    prefix: keyPrefix(k.publicId),
    userId: k.userId,
    scopes: k.scopes,
    status: keyStatus(k, now),
    createdAt: k.createdAt.toISOString(),
    createdBy: k.createdBy,
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
    lastUsedAt: iso(k.lastUsedAt),
    lastUsedIp: k.lastUsedIp,
  }
}

export async function insertKey (db: DbOrTx, row: ApiKeyRow): Promise<void> {
  await db.insert(apiKeys).values(row)
}

export async function findKeyByPublicId (db: DbOrTx, publicId: string): Promise<ApiKeyRow | undefined> {
  const [k] = await db.select().from(apiKeys).where(eq(apiKeys.publicId, publicId)).limit(1)
  return k
}

export async function findKey (db: DbOrTx, id: string): Promise<ApiKeyRow | undefined> {
  if (!isId(id)) return undefined
  const [k] = await db.select().from(apiKeys).where(eq(apiKeys.id, id)).limit(1)
  return k
}

/** A user's keys, newest first (revoked and expired ones included: they tell what was used when). */
export async function listKeys (db: DbOrTx, q: { userId: string, limit: number, cursor?: string }): Promise<{ items: ApiKeyView[], nextCursor: string | null }> {
  const conds = [eq(apiKeys.userId, q.userId)]
  if (q.cursor !== undefined) conds.push(lt(apiKeys.id, decodeIdCursor(q.cursor)))
  const rows = await db.select().from(apiKeys).where(and(...conds)).orderBy(desc(apiKeys.id)).limit(q.limit + 1)
  const page = pageOf(rows, q.limit, r => r.id)
  const now = new Date()
  return { items: page.items.map(k => toApiKeyView(k, now)), nextCursor: page.nextCursor }
}

/** Live (neither revoked nor expired) keys of a user. */
export async function countLiveKeys (db: DbOrTx, userId: string, now: Date): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)` }).from(apiKeys)
    .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), sql`${apiKeys.expiresAt} > ${now}`)))
  return Number(row?.n ?? 0)
}

/** Marks a key revoked; false when it already was (the first revocation's time and reason stay). */
export async function revokeKey (db: DbOrTx, id: string, reason: string, at: Date): Promise<boolean> {
  const [res] = await db.update(apiKeys).set({ revokedAt: at, revokedReason: reason }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
  return res.affectedRows > 0
}

/** Revokes every live key of a user (inside the caller's transaction); returns their ids. */
export async function revokeUserKeys (tx: DbOrTx, userId: string, reason: string, at: Date): Promise<string[]> {
  const rows = await tx.select({ id: apiKeys.id }).from(apiKeys).where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt))).for('update')
  if (rows.length > 0) await tx.update(apiKeys).set({ revokedAt: at, revokedReason: reason }).where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
  return rows.map(r => r.id)
}

/**
 * Records a use. Conditional: of the API processes that try within the same minute, one writes
 * (each process also tries at most once a minute per key, see the authenticator).
 */
export async function touchKey (db: DbOrTx, id: string, at: Date, ip: string | null): Promise<void> {
  const minuteAgo = new Date(at.getTime() - 60_000)
  await db.update(apiKeys).set({ lastUsedAt: at, lastUsedIp: ip?.slice(0, 64) ?? null })
    .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, minuteAgo))))
}
