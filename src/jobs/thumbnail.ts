import sharp from 'sharp'
import { buffer } from 'node:stream/consumers'
import { Readable } from 'node:stream'
import { processorOf } from './types.js'
import { finishProcessing, getDocumentRow, thumbnailKey } from '../domain/documents.js'
import { StorageNotFound } from '../storage/types.js'

export const THUMBNAIL_JOB = 'document-thumbnail'
const MAX_INPUT_PIXELS = 50_000_000
const SIZE = 256
/** sharp decodes from memory: larger files get no thumbnail */
const MAX_INPUT_BYTES = 200 * 1024 * 1024

/**
 * Makes a 256x256 (fit inside) webp thumbnail of an image document and records its dimensions
 * and format. sharp drops EXIF (GPS included) unless asked to keep it; `rotate()` applies the
 * EXIF orientation first. Bad or oversized images end as `failed` with the error recorded.
 */
export default processorOf({
  name: THUMBNAIL_JOB,
  async process (app, job) {
    // The content version this job was queued for: a newer one has its own job.
    const version = job.data.version ?? 1
    const doc = await getDocumentRow(app.db, job.data.documentId)
    if (doc === null || doc.status !== 'processing' || doc.currentVersion !== version) return { skipped: true }
    if (doc.size > MAX_INPUT_BYTES) {
      await finishProcessing(app.db, doc.id, { ok: false, error: `thumbnail skipped: images over ${MAX_INPUT_BYTES} bytes are not decoded` }, version)
      return { failed: true }
    }
    // Storage errors are worth retrying (the thumbnail sweep queues the job again after its last
    // attempt); image errors are not, and neither is an original that is gone.
    let original: Buffer
    try {
      original = await buffer(await app.storage.get(doc.storageKey))
    } catch (err) {
      if (!(err instanceof StorageNotFound)) throw err
      await finishProcessing(app.db, doc.id, { ok: false, error: 'thumbnail failed: the original object is missing' }, version)
      return { failed: true }
    }
    let result
    try {
      const image = sharp(original, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      const meta = await image.metadata()
      const thumb = await image.rotate().resize(SIZE, SIZE, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }).toBuffer({ resolveWithObject: true })
      const oriented = meta.autoOrient ?? { width: meta.width, height: meta.height }
      result = { thumb, metadata: { width: oriented.width, height: oriented.height, format: meta.format } }
    } catch (err) {
      await finishProcessing(app.db, doc.id, { ok: false, error: `thumbnail failed: ${(err as Error).message}` }, version)
      return { failed: true }
    }
    const key = thumbnailKey(doc.id, version)
    await app.storage.put(key, Readable.from([result.thumb.data]), { contentType: 'image/webp' })
    const applied = await finishProcessing(app.db, doc.id, { ok: true, thumbnailKey: key, width: result.thumb.info.width, height: result.thumb.info.height, metadata: result.metadata }, version)
    // A newer version came meanwhile (it has its own key and job), or the row was deleted for good
    // (its keys were queued for deletion before we wrote): drop the thumbnail we just wrote.
    if (!applied || await getDocumentRow(app.db, doc.id) === null) {
      await app.storage.delete(key)
      return { skipped: true }
    }
    return { width: result.thumb.info.width, height: result.thumb.info.height }
  },
})
