import { defineJob } from './types.js'
import { deleteUpload, expiredUploads } from '../domain/uploads.js'

export const UPLOADS_SWEEP_JOB = 'uploads-sweep'
/** Completing an upload is refused from expiresAt on; the sweep waits this much longer, so they never race. */
export const SWEEP_GRACE_MS = 10 * 60 * 1000

/** Deletes pending pre-signed uploads that expired, and whatever bytes were sent to them. */
export default defineJob<{ now?: string }>({
  queue: 'cleanup',
  name: UPLOADS_SWEEP_JOB,
  options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 } },
  async process (app, job) {
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const before = new Date(now.getTime() - SWEEP_GRACE_MS)
    let swept = 0
    for (;;) {
      const batch = await expiredUploads(app.db, before, 200)
      for (const u of batch) {
        // Object first: a crash in between leaves a row the next sweep retries, never an orphaned object.
        await app.storage.delete(u.storageKey)
        await deleteUpload(app.db, u.id)
        swept++
      }
      if (batch.length < 200) break
    }
    if (swept > 0) app.log.info({ swept }, 'expired uploads swept')
    return { swept }
  },
})
