import { eq } from 'drizzle-orm'
import { processorOf } from './types.js'
import { deleteUpload, expiredUploads, uploadStatuses } from '../domain/uploads.js'
import { STAGING_PREFIX, stagingUploadId } from '../domain/upload-staging.js'
import { originalKey } from '../domain/documents.js'
import { documents } from '../../drizzle/schema/index.js'
import { expiredReservations, releaseQuota } from '../domain/quota.js'

export const UPLOADS_SWEEP_JOB = 'uploads-sweep'
/** Completing an upload is refused from expiresAt on; the sweep waits this much longer, so they never race. */
export const SWEEP_GRACE_MS = 10 * 60 * 1000
/** A claimed upload (a complete running) is taken for a crashed one only this long after its expiry. */
export const STALE_CLAIM_MS = 24 * 3600 * 1000

/**
 * Deletes uploads that expired (pending ones and the rows kept after complete or cancel) and their
 * bytes (of a tus upload: also its multipart upload and metadata, src/storage/tus-store.ts); then staging objects no pending upload will use: what a pre-signed URL wrote after its
 * upload was completed or cancelled (S3 cannot refuse such a PUT; src/domain/upload-staging.ts).
 * Quota reservations go with their uploads, and any past its own expiry (src/domain/quota.ts).
 */
export default processorOf({
  name: UPLOADS_SWEEP_JOB,
  async process (app, job) {
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const before = new Date(now.getTime() - SWEEP_GRACE_MS)
    const staleBefore = new Date(now.getTime() - STALE_CLAIM_MS)
    let swept = 0
    for (;;) {
      const batch = await expiredUploads(app.db, before, staleBefore, 200)
      for (const u of batch) {
        // Objects first: a crash in between leaves a row the next sweep retries, never an orphaned object.
        await app.storage.delete(u.storageKey)
        // A resumable (tus) upload's leftovers: S3's multipart upload (aborted), the store's metadata.
        await app.tusStore.purge(u.storageKey)
        // A complete that crashed after moving the bytes: no document was created (that would have
        // marked the upload completed in the same transaction), but check before deleting its key.
        if (u.status === 'completing' && (await app.db.select({ id: documents.id }).from(documents).where(eq(documents.id, u.id)).limit(1)).length === 0) {
          await app.storage.delete(originalKey(u.id))
        }
        await deleteUpload(app.db, u.id)
        // Its quota reservation (the upload's id) is free again; a no-op once completed (settled).
        await releaseQuota(app.db, u.id)
        swept++
      }
      if (batch.length < 200) break
    }
    // Reservations nobody settled or released: a process that died mid-upload.
    let released = 0
    for (;;) {
      const ids = await expiredReservations(app.db, now, 200)
      for (const id of ids) if (await releaseQuota(app.db, id)) released++
      if (ids.length < 200) break
    }
    let strays = 0
    for await (const page of app.storage.list(STAGING_PREFIX)) {
      const ids = page.map(o => stagingUploadId(o.key)).filter((id): id is string => id !== null)
      const statuses = await uploadStatuses(app.db, ids)
      for (const o of page) {
        const id = stagingUploadId(o.key)
        if (id === null) continue
        const status = statuses.get(id)
        // Pending: waiting for its complete; completing: the complete moves it or the sweep above deletes it.
        if (status === 'pending' || status === 'completing') continue
        await app.storage.delete(o.key)
        strays++
      }
    }
    if (swept > 0 || strays > 0 || released > 0) app.log.info({ swept, strays, released }, 'expired uploads swept')
    return { swept, strays, released }
  },
})
