import { and, desc, eq, like, lt } from 'drizzle-orm'
import type { FastifyRequest } from 'fastify'
import type { DbOrTx, SqlValue } from '../db.js'
import { auditEvents } from '../../drizzle/schema/index.js'
import { badRequest } from '../lib/errors.js'

export interface AuditEntry {
  action: string
  subject?: string | null
  actorId?: string | null
  payload?: Record<string, unknown>
}

export const AUDIT_COLUMNS = 'at, actor_id, action, subject, ip, user_agent, request_id, payload'
export const AUDIT_INSERT_SQL = `INSERT INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

/** One audit row's values in AUDIT_COLUMNS order: who (the signed-in user unless given), what, from where. */
export function auditValues (request: FastifyRequest | null, entry: AuditEntry, at = new Date()): SqlValue[] {
  return [
    at,
    entry.actorId !== undefined ? entry.actorId : (request?.user?.id ?? null),
    entry.action,
    entry.subject ?? null,
    request?.ip?.slice(0, 64) ?? null, // the column's width: a long X-Forwarded-For entry must not fail the write
    request?.headers['user-agent']?.slice(0, 512) ?? null,
    request !== null ? String(request.id) : null,
    entry.payload !== undefined ? JSON.stringify(entry.payload) : null,
  ]
}

export interface AuditQuery { actorId?: string, action?: string, subject?: string, limit: number, cursor?: string }

export interface AuditEventView {
  id: string
  at: string
  actorId: string | null
  action: string
  subject: string | null
  ip: string | null
  userAgent: string | null
  requestId: string | null
  payload: Record<string, unknown> | null
}

const encode = (id: number): string => Buffer.from(String(id)).toString('base64url')
function decode (cursor: string): number {
  const s = Buffer.from(cursor, 'base64url').toString()
  if (!/^[1-9]\d{0,15}$/.test(s)) throw badRequest('The cursor is not one this API gave out; pass nextCursor from the previous page unchanged', 'invalid_cursor')
  return Number(s)
}

/** Newest first. `action` matches exactly, or by prefix when it ends in `.*` (e.g. `auth.*`). */
export async function listAuditEvents (db: DbOrTx, q: AuditQuery): Promise<{ items: AuditEventView[], nextCursor: string | null }> {
  const conds = []
  if (q.cursor !== undefined) conds.push(lt(auditEvents.id, decode(q.cursor)))
  if (q.actorId !== undefined) conds.push(eq(auditEvents.actorId, q.actorId))
  if (q.subject !== undefined) conds.push(eq(auditEvents.subject, q.subject))
  if (q.action !== undefined) {
    conds.push(q.action.endsWith('.*')
      ? like(auditEvents.action, `${q.action.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`)
      : eq(auditEvents.action, q.action))
  }
  const rows = await db.select().from(auditEvents).where(and(...conds)).orderBy(desc(auditEvents.id)).limit(q.limit + 1)
  const page = rows.slice(0, q.limit)
  const last = page.at(-1)
  return {
    items: page.map(r => ({ ...r, id: String(r.id), at: r.at.toISOString() })),
    nextCursor: rows.length > q.limit && last !== undefined ? encode(last.id) : null,
  }
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
