import { processorOf } from './types.js'
import { processingSince } from '../domain/documents.js'
import { requeueEach } from './requeue.js'

/** A document still `processing` this long after its last change, without a live thumbnail job, gets it again. */
export const THUMBNAIL_SWEEP_GRACE_MS = 5 * 60_000

/**
 * Queues again the thumbnail of documents left `processing` without a live job: the job was lost
 * between the status change and the enqueue (a crash, Redis down or restarted empty) or BullMQ gave
 * up on it (storage errors past its attempts). Job ids are per content version, as when first
 * queued, so a sweep never doubles a job; the job applies its result only to the current version.
 */
export const thumbnailSweep = processorOf({
  name: 'thumbnail-sweep',
  async process (app, job) {
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const rows = await processingSince(app.db, new Date(now.getTime() - THUMBNAIL_SWEEP_GRACE_MS), 500)
    // Version 1 as the upload queues it (no `version`); later versions as a new version does.
    const requeued = await requeueEach(app, 'document-thumbnail', rows.map(r => r.currentVersion === 1 ? { documentId: r.id } : { documentId: r.id, version: r.currentVersion }))
    if (requeued > 0) app.log.warn({ requeued }, 'thumbnail sweep: queued again the thumbnails of documents left in processing')
    return { requeued }
  },
})
