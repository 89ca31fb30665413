import { inArray } from 'drizzle-orm'
import type { Db } from '../db.js'
import { processorOf } from './types.js'
import { documents, documentVersions, uploads } from '../../drizzle/schema/index.js'
import { isId } from '../lib/ids.js'
import type { ListedObject } from '../storage/types.js'

export const STORAGE_RECONCILE_JOB = 'storage-reconcile'
/** Objects (and ids) younger than this are never touched: an upload may be streaming, its row not yet written. */
export const RECONCILE_GRACE_MS = 24 * 3600 * 1000
/** At most this many objects deleted per run; the rest waits for the next run. */
export const RECONCILE_MAX_DELETES = 1000

/** The only keys Quire writes for documents; anything else in the bucket is left alone. */
const DOCUMENT_KEY = /^documents\/([0-9a-f-]{36})\/(original|thumbnail\.webp|thumbnail-v\d{1,10}\.webp|versions\/[0-9a-f-]{36})$/

/** Keys a live document may own or not: a version (or its thumbnail) is its only while a row names it. */
const PER_VERSION_KEY = /\/(versions\/|thumbnail-v)/

/** Which of these per-version keys of live documents no version row nor document row names. */
async function unnamed (db: Db, keys: string[]): Promise<string[]> {
  if (keys.length === 0) return []
  const named = new Set([
    ...(await db.select({ k: documentVersions.storageKey }).from(documentVersions).where(inArray(documentVersions.storageKey, keys))).map(r => r.k),
    ...(await db.select({ k: documents.thumbnailKey }).from(documents).where(inArray(documents.thumbnailKey, keys))).map(r => r.k),
  ])
  return keys.filter(k => !named.has(k))
}

/** UUIDv7 ids carry their creation time (ms) in the first 48 bits. */
const idTime = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16)

/** The storage's pages regrouped into pages of about `size` objects (local storage lists one directory per page). */
async function * batched (pages: AsyncIterable<ListedObject[]>, size: number): AsyncGenerator<ListedObject[]> {
  let batch: ListedObject[] = []
  for await (const page of pages) {
    batch.push(...page)
    if (batch.length >= size) { yield batch; batch = [] }
  }
  if (batch.length > 0) yield batch
}

/**
 * Deletes stored objects that no document, version or pending upload refers to any more, once older than
 * RECONCILE_GRACE_MS: the last resort for deletes that failed both inline and in the delete-objects
 * queue, or a crash between a row's deletion and the queueing of its objects. Local storage: also
 * temp files of writes that a crash interrupted. Scheduled daily. Refuses to delete anything when most
 * old objects have no row (storage and database that do not belong together).
 */
export default processorOf({
  name: STORAGE_RECONCILE_JOB,
  async process (app, job) {
    const now = job.data.now !== undefined ? new Date(job.data.now).getTime() : Date.now()
    const cutoff = now - RECONCILE_GRACE_MS
    let scanned = 0
    let known = 0
    let unknown = 0
    const orphans: string[] = []
    for await (const page of batched(app.storage.list('documents/'), 1000)) {
      scanned += page.length
      const candidates = new Map<string, string[]>()
      for (const o of page) {
        const m = DOCUMENT_KEY.exec(o.key)
        if (m === null || !isId(m[1]!) || idTime(m[1]!) > cutoff || o.modified.getTime() > cutoff) continue
        candidates.set(m[1]!, [...(candidates.get(m[1]!) ?? []), o.key])
      }
      if (candidates.size === 0) continue
      const ids = [...candidates.keys()]
      const referenced = new Set([
        ...(await app.db.select({ id: documents.id }).from(documents).where(inArray(documents.id, ids))).map(r => r.id),
        ...(await app.db.select({ id: uploads.id }).from(uploads).where(inArray(uploads.id, ids))).map(r => r.id),
      ])
      const perVersion: string[] = []
      for (const [id, keys] of candidates) {
        if (referenced.has(id)) {
          known++
          // A version stored by a request that crashed before its row was written.
          perVersion.push(...keys.filter(k => PER_VERSION_KEY.test(k)))
          continue
        }
        unknown++
        for (const key of keys) if (orphans.length < RECONCILE_MAX_DELETES) orphans.push(key)
      }
      for (const key of await unnamed(app.db, perVersion)) if (orphans.length < RECONCILE_MAX_DELETES) orphans.push(key)
    }
    // Orphans are the rare exception: if the database knows fewer of the old objects than it does
    // not, it is most likely not this storage's database (a worker started with the wrong
    // DATABASE_URL or STORAGE_DIR/S3_BUCKET). Delete nothing then.
    if (unknown > known) {
      app.log.error({ scanned, known, unknown }, 'storage reconcile refused: most stored objects have no row, is this the right database for this storage?')
      return { scanned, known, unknown, deleted: 0, refused: true }
    }
    for (const key of orphans) {
      app.log.warn({ key }, 'storage reconcile: deleting an orphaned object')
      await app.storage.delete(key)
    }
    const deleted = orphans.length
    const temps = await app.storage.sweepPartials(new Date(cutoff))
    if (deleted > 0 || temps > 0) app.log.info({ scanned, known, unknown, deleted, temps }, 'storage reconciled')
    return { scanned, known, unknown, deleted, temps }
  },
})
