import { processorOf } from './types.js'
import { deleteDocumentRow, trashedBefore } from '../domain/documents.js'
import { enqueueObjectDeletion } from './object-deletion.js'

export const TRASH_PURGE_JOB = 'trash-purge'

/** Permanently deletes documents trashed more than TRASH_RETENTION_DAYS ago (0 keeps the trash forever). */
export default processorOf({
  name: TRASH_PURGE_JOB,
  async process (app, job) {
    const days = app.config.TRASH_RETENTION_DAYS
    if (days === 0) return { purged: 0, skipped: true }
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const before = new Date(now.getTime() - days * 24 * 3600 * 1000)
    let purged = 0
    for (;;) {
      const batch = await trashedBefore(app.db, before, 200)
      for (const d of batch) {
        const keys = await deleteDocumentRow(app.db, d.id)
        if (keys === null) continue
        await enqueueObjectDeletion(app, keys, app.log)
        await app.recordAudit(null, { action: 'document.purge', subject: `document:${d.id}`, actorId: null, payload: { ownerId: d.ownerId, reason: 'trash_retention', retentionDays: days } })
        // The backend forgets it too (a delete delivered without the row), if it may still hold something.
        await app.ingestions.documentPurged({ actorId: null, requestId: null }, d).catch((err: unknown) => app.log.error({ err, documentId: d.id }, 'could not queue the index delete of a purged document'))
        purged++
      }
      if (batch.length < 200) break
    }
    if (purged > 0) app.log.info({ purged, before }, 'trash purged')
    return { purged }
  },
})
