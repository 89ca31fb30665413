import { processorOf } from './types.js'
import { purgeWebhookLog } from '../domain/webhooks/relay.js'

/** Deletes the webhook delivery log past WEBHOOK_LOG_RETENTION_DAYS (0 keeps it forever). Scheduled hourly. */
export default processorOf({
  name: 'webhook-purge',
  async process (app, job) {
    const days = app.config.WEBHOOK_LOG_RETENTION_DAYS
    if (days === 0) return { skipped: true }
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const before = new Date(now.getTime() - days * 24 * 3600 * 1000)
    const purged = await purgeWebhookLog(app.db, before)
    if (purged.deliveries + purged.events > 0) app.log.info({ ...purged, before }, 'webhook delivery log purged')
    return purged
  },
})
