import type { AuditEventDto } from '../schemas/auth.js'
import { decodeSeqCursor, pageOf } from '../lib/pagination.js'
import { likePrefix } from '../lib/sql.js'
import { and, desc, eq, like, lt } from 'drizzle-orm'
import type { Db, DbOrTx, SqlValue } from '../db.js'
import { AUDIT_INSERT_SQL } from '../db/hot-paths.js'
import { auditEvents } from '../../drizzle/schema/index.js'

export interface AuditEntry {
  action: string
  subject?: string | null
  actorId?: string | null
  payload?: Record<string, unknown>
}

export { AUDIT_COLUMNS, AUDIT_INSERT_SQL } from '../db/hot-paths.js'

/**
 * Who acts and from where: built once per request (plugins/app/audit.ts `auditContext`), passed to
 * the domain instead of the request. A job or the CLI passes null (or its own actor).
 */
export interface AuditContext {
  actorId: string | null
  ip: string | null
  userAgent: string | null
  requestId: string | null
  /** The API key a request was authenticated with (issue 21): recorded on every row it makes. */
  apiKeyId?: string | null
}

/** The request fields an AuditContext is made of (a FastifyRequest has them; no Fastify import here). */
export interface RequestLike {
  id: unknown
  ip?: string
  headers: { 'user-agent'?: string }
  user?: { id: string, keyId?: string } | null
}

/** The audit context of a request: the signed-in user (if any), its API key (if any), address, user agent and id. */
export function contextOf (request: RequestLike): AuditContext {
  return {
    actorId: request.user?.id ?? null,
    ip: request.ip?.slice(0, 64) ?? null, // the column's width: a long X-Forwarded-For entry must not fail the write
    userAgent: request.headers['user-agent']?.slice(0, 512) ?? null,
    requestId: String(request.id),
    apiKeyId: request.user?.keyId ?? null,
  }
}

/**
 * One audit row's values in AUDIT_COLUMNS order: who (the context's actor unless the entry names
 * one), what, from where. Every audit row is built here (the writer below, the ingestion trigger's
 * guarded insert, the CLI).
 */
export function auditValues (c: AuditContext | null, entry: AuditEntry, at = new Date()): SqlValue[] {
  return [
    at,
    entry.actorId !== undefined ? entry.actorId : (c?.actorId ?? null),
    entry.action,
    entry.subject ?? null,
    c?.ip?.slice(0, 64) ?? null,
    c?.userAgent?.slice(0, 512) ?? null,
    c?.requestId ?? null,
    c?.apiKeyId ?? null,
    entry.payload !== undefined ? JSON.stringify(entry.payload) : null,
  ]
}

export interface AuditLog { error: (obj: object, msg: string) => void }

/** Records who did what, from where (one row per call). Never pass secrets in `payload`. */
export type RecordAudit = (ctx: AuditContext | null, entry: AuditEntry) => Promise<void>

/**
 * The one audit writer: the domain services record their actions through it. Failures are
 * logged, not thrown (an action that happened stays done).
 */
export function auditRecorder (deps: { db: Db, log: AuditLog }): RecordAudit {
  return async (ctx, entry) => {
    try {
      // Plain SQL: one audit row per mutating request, the query builder was a measurable share of them.
      await deps.db.$client.execute(AUDIT_INSERT_SQL, auditValues(ctx, entry))
    } catch (err) {
      deps.log.error({ err, action: entry.action, requestId: ctx?.requestId }, 'audit write failed')
    }
  }
}

export interface AuditQuery { actorId?: string, apiKeyId?: string, action?: string, subject?: string, limit: number, cursor?: string }

export type AuditEventView = AuditEventDto

/** Newest first. `action` matches exactly, or by prefix when it ends in `.*` (e.g. `auth.*`). */
export async function listAuditEvents (db: DbOrTx, q: AuditQuery): Promise<{ items: AuditEventView[], nextCursor: string | null }> {
  const conds = []
  if (q.cursor !== undefined) conds.push(lt(auditEvents.id, decodeSeqCursor(q.cursor)))
  if (q.actorId !== undefined) conds.push(eq(auditEvents.actorId, q.actorId))
  if (q.apiKeyId !== undefined) conds.push(eq(auditEvents.apiKeyId, q.apiKeyId))
  if (q.subject !== undefined) conds.push(eq(auditEvents.subject, q.subject))
  if (q.action !== undefined) {
    conds.push(q.action.endsWith('.*')
      ? like(auditEvents.action, likePrefix(q.action.slice(0, -1)))
      : eq(auditEvents.action, q.action))
  }
  const rows = await db.select().from(auditEvents).where(and(...conds)).orderBy(desc(auditEvents.id)).limit(q.limit + 1)
  const page = pageOf(rows, q.limit, r => r.id)
  return { items: page.items.map(r => ({ ...r, id: String(r.id), at: r.at.toISOString() })), nextCursor: page.nextCursor }
}

/** Deletes events older than the retention, in batches so no statement holds locks for long. */
export async function purgeAuditEvents (db: DbOrTx, olderThan: Date, batch = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const [res] = await db.delete(auditEvents).where(lt(auditEvents.at, olderThan)).orderBy(auditEvents.at).limit(batch)
    total += res.affectedRows
    if (res.affectedRows < batch) return total
  }
}
