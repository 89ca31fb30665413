import type { SqlValue } from '../../db.js'
import { auditRecorder, auditValues, type AuditEntry } from '../audit.js'
import type { ActorContext, IngestionDeps } from './deps.js'

/** Every ingestion action's audit row is written here, by the domain (never by a route). */

/** One audit row's values from the actor context (its AuditContext fields). */
export const auditRow = (ctx: ActorContext, entry: AuditEntry, at: Date): SqlValue[] => auditValues(ctx, entry, at)

export { GUARDED_AUDIT_SQL } from '../../db/hot-paths.js'

/** An audit row after the fact, through the one writer (failures are logged, not thrown). */
export async function recordAudit (deps: Pick<IngestionDeps, 'db' | 'log'>, ctx: ActorContext, entry: AuditEntry): Promise<void> {
  await auditRecorder({ db: deps.db, log: deps.log })(ctx, entry)
}

/** What the audit log records of one trigger. */
export const triggerAuditEntry = (item: { id: string, documentId: string, pipeline: string }): AuditEntry =>
  ({ action: 'ingestion.trigger', subject: `ingestion:${item.id}`, payload: { documentId: item.documentId, pipeline: item.pipeline } })
