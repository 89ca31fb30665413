import { purgeAuditEvents } from '../domain/audit.js'
import { processorOf } from './types.js'

/** Deletes audit events older than AUDIT_RETENTION_DAYS (0 keeps them forever). Scheduled hourly. */
export default processorOf({
  name: 'audit-purge',
  async process (app) {
    const days = app.config.AUDIT_RETENTION_DAYS
    if (days === 0) return { deleted: 0, skipped: true }
    const before = new Date(Date.now() - days * 24 * 3600 * 1000)
    const deleted = await purgeAuditEvents(app.db, before)
    if (deleted > 0) app.log.info({ deleted, before }, 'audit events purged')
    return { deleted }
  },
})
