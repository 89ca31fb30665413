import type { SqlValue } from '../../db.js'
import { AUDIT_COLUMNS, AUDIT_INSERT_SQL, type AuditEntry } from '../audit.js'
import type { ActorContext, IngestionDeps } from './deps.js'

/** Every ingestion action's audit row is written here, by the domain (never by a route). */

/** One audit row's values in AUDIT_COLUMNS order, from the actor context. */
export function auditRow (ctx: ActorContext, entry: AuditEntry, at: Date): SqlValue[] {
  return [
    at,
    entry.actorId !== undefined ? entry.actorId : ctx.actorId,
    entry.action,
    entry.subject ?? null,
    ctx.ip?.slice(0, 64) ?? null, // the column's width: a long X-Forwarded-For entry must not fail the write
    ctx.userAgent?.slice(0, 512) ?? null,
    ctx.requestId,
    entry.payload !== undefined ? JSON.stringify(entry.payload) : null,
  ]
}

/** The audit INSERT for a batch, kept only when the batch's `@quire_changed` is 1 (the row was written). */
export const GUARDED_AUDIT_SQL = `INSERT INTO audit_events (${AUDIT_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL WHERE @quire_changed = 1`

/** An audit row after the fact. Never pass secrets in `payload`. Failures are logged, not thrown (as the audit plugin does). */
export async function recordAudit (deps: Pick<IngestionDeps, 'db' | 'log' | 'clock'>, ctx: ActorContext, entry: AuditEntry): Promise<void> {
  try {
    await deps.db.$client.execute(AUDIT_INSERT_SQL, auditRow(ctx, entry, deps.clock()))
  } catch (err) {
    deps.log.error({ err, action: entry.action, requestId: ctx.requestId }, 'audit write failed')
  }
}

/** What the audit log records of one trigger. */
export const triggerAuditEntry = (item: { id: string, documentId: string, pipeline: string }): AuditEntry =>
  ({ action: 'ingestion.trigger', subject: `ingestion:${item.id}`, payload: { documentId: item.documentId, pipeline: item.pipeline } })
