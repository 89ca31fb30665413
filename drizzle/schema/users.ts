import { mysqlTable, varchar, boolean, json, int, datetime, char, bigint, index, uniqueIndex, primaryKey } from 'drizzle-orm/mysql-core'
import { exactText, idColumn } from './columns.js'

const ts = (name: string) => datetime(name, { mode: 'date', fsp: 3 })

export const users = mysqlTable('users', {
  id: idColumn('id').primaryKey(),
  email: exactText('email', 254).notNull(),
  name: varchar('name', { length: 200 }),
  /** '' for a service account: no password matches it */
  passwordHash: varchar('password_hash', { length: 100 }).notNull(),
  /** 'human', or 'service' (issue 21: no password, cannot log in, uses API keys made by an admin) */
  kind: varchar('kind', { length: 16 }).notNull().default('human'),
  role: varchar('role', { length: 16 }).notNull().default('viewer'),
  grants: json('grants').$type<string[]>().notNull(),
  revokes: json('revokes').$type<string[]>().notNull(),
  disabled: boolean('disabled').notNull().default(false),
  /** bumped on every change that affects authorization (role, grants, disable, password) */
  authVersion: int('auth_version').notNull().default(1),
  /** storage quota in bytes (src/domain/quota.ts): null = QUOTA_DEFAULT_BYTES, 0 = unlimited */
  quotaBytes: bigint('quota_bytes', { mode: 'number' }),
  /** bytes of every stored version of the documents this user owns (trashed ones too, until purged) */
  usedBytes: bigint('used_bytes', { mode: 'number' }).notNull().default(0),
  /** bytes held by uploads in flight (quota_reservations), settled to their real size at completion */
  reservedBytes: bigint('reserved_bytes', { mode: 'number' }).notNull().default(0),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
}, (t) => [
  uniqueIndex('users_email_uq').on(t.email),
  index('users_role_idx').on(t.role, t.id),
  index('users_kind_idx').on(t.kind, t.id),
])

export const sessions = mysqlTable('sessions', {
  id: idColumn('id').primaryKey(),
  userId: idColumn('user_id').notNull(),
  createdAt: ts('created_at').notNull(),
  lastUsedAt: ts('last_used_at').notNull(),
  expiresAt: ts('expires_at').notNull(),
  revokedAt: ts('revoked_at'),
  revokedReason: varchar('revoked_reason', { length: 32 }),
  ip: varchar('ip', { length: 64 }),
  userAgent: varchar('user_agent', { length: 512 }),
}, (t) => [
  index('sessions_user_idx').on(t.userId, t.revokedAt),
])

/** Every refresh token ever issued, stored only as a sha256 hash; rotated ones are kept for reuse detection. */
export const refreshTokens = mysqlTable('refresh_tokens', {
  tokenHash: char('token_hash', { length: 64 }).primaryKey(),
  sessionId: idColumn('session_id').notNull(),
  createdAt: ts('created_at').notNull(),
  rotatedAt: ts('rotated_at'),
}, (t) => [
  index('refresh_tokens_session_idx').on(t.sessionId),
])

export const auditEvents = mysqlTable('audit_events', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  at: ts('at').notNull(),
  actorId: idColumn('actor_id'),
  action: varchar('action', { length: 64 }).notNull(),
  subject: varchar('subject', { length: 128 }),
  ip: varchar('ip', { length: 64 }),
  userAgent: varchar('user_agent', { length: 512 }),
  requestId: varchar('request_id', { length: 128 }),
  /** the API key the request was authenticated with, if any */
  apiKeyId: idColumn('api_key_id'),
  payload: json('payload').$type<Record<string, unknown>>(),
}, (t) => [
  index('audit_at_idx').on(t.at),
  index('audit_actor_idx').on(t.actorId, t.id),
  index('audit_action_idx').on(t.action, t.id),
  index('audit_subject_idx').on(t.subject, t.id),
])

/** Bytes an upload in flight holds against a user's quota (src/domain/quota.ts), until settled or released. */
export const quotaReservations = mysqlTable('quota_reservations', {
  id: idColumn('id').primaryKey(),
  userId: idColumn('user_id').notNull(),
  /** who started the upload (null: reserved before migration 0014); when not `userId`, its bytes count in quota_shared_holds too */
  heldBy: idColumn('held_by'),
  bytes: bigint('bytes', { mode: 'number' }).notNull(),
  createdAt: ts('created_at').notNull(),
  /** released by the uploads sweep after this (an upload whose process died) */
  expiresAt: ts('expires_at').notNull(),
}, (t) => [
  index('quota_reservations_expires_idx').on(t.expiresAt),
])

/**
 * The bytes one user (`held_by`) holds in unfinished reservations against another user's quota
 * (`user_id`, the owner of the documents they upload into): the sum of their quota_reservations
 * rows, kept like `users.reserved_bytes` and capped by QUOTA_SHARED_RESERVE_MAX_BYTES
 * (src/domain/quota.ts). A row goes when it is back at 0.
 */
export const quotaSharedHolds = mysqlTable('quota_shared_holds', {
  userId: idColumn('user_id').notNull(),
  heldBy: idColumn('held_by').notNull(),
  bytes: bigint('bytes', { mode: 'number' }).notNull().default(0),
}, (t) => [
  primaryKey({ columns: [t.userId, t.heldBy] }),
])
