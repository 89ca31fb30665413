import { processorOf } from './types.js'
import { jobIdOf, type Payload } from './catalogue.js'
import { processingSince } from '../domain/documents.js'
import { requeueUnlessLive } from './requeue.js'

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
    let requeued = 0
    for (const { id, currentVersion } of rows) {
      const data: Payload<'document-thumbnail'> = currentVersion === 1 ? { documentId: id } : { documentId: id, version: currentVersion }
      if (await requeueUnlessLive(app.queues.media, jobIdOf('document-thumbnail', data)!, async () => await app.enqueue('document-thumbnail', data))) requeued++
    }
    if (requeued > 0) app.log.warn({ requeued }, 'thumbnail sweep: queued again the thumbnails of documents left in processing')
    return { requeued }
  },
})
