import { mysqlTable, varchar, json, datetime, char, index, uniqueIndex } from 'drizzle-orm/mysql-core'
import { exactText, idColumn } from './columns.js'

const ts = (name: string) => datetime(name, { mode: 'date', fsp: 3 })

/**
 * API keys (issue 21): `qk_<public_id>_<secret>`. Only the secret's SHA-256 is stored; the public
 * id finds the row (unique index), the hash is compared in constant time. Everything but
 * `revoked_at` and the last-use columns is immutable, so API processes may cache it.
 */
export const apiKeys = mysqlTable('api_keys', {
  id: idColumn('id').primaryKey(),
  publicId: exactText('public_id', 32).notNull(),
  userId: idColumn('user_id').notNull(),
  name: varchar('name', { length: 100 }).notNull(),
  scopes: json('scopes').$type<string[]>().notNull(),
  secretHash: char('secret_hash', { length: 64 }).notNull(),
  /** who made it: the owner, or an admin for a service account */
  createdBy: idColumn('created_by'),
  createdAt: ts('created_at').notNull(),
  expiresAt: ts('expires_at'),
  revokedAt: ts('revoked_at'),
  revokedReason: varchar('revoked_reason', { length: 32 }),
  lastUsedAt: ts('last_used_at'),
  lastUsedIp: varchar('last_used_ip', { length: 64 }),
}, (t) => [
  uniqueIndex('api_keys_public_id_uq').on(t.publicId),
  index('api_keys_user_idx').on(t.userId, t.id),
])
