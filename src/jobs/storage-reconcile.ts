import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { inArray } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { processorOf } from './types.js'
import { documents, uploads } from '../../drizzle/schema/index.js'
import { isId } from '../lib/ids.js'
import type { LocalStorage } from '../storage/local.js'
import type { S3Storage } from '../storage/s3.js'

export const STORAGE_RECONCILE_JOB = 'storage-reconcile'
/** Objects (and ids) younger than this are never touched: an upload may be streaming, its row not yet written. */
export const RECONCILE_GRACE_MS = 24 * 3600 * 1000
/** At most this many objects deleted per run; the rest waits for the next run. */
export const RECONCILE_MAX_DELETES = 1000

/** The only keys Quire writes for documents; anything else in the bucket is left alone. */
const DOCUMENT_KEY = /^documents\/([0-9a-f-]{36})\/(original|thumbnail\.webp)$/

interface Listed { key: string, modified: Date }

/** UUIDv7 ids carry their creation time (ms) in the first 48 bits. */
const idTime = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16)

async function * listDocumentObjects (app: FastifyInstance): AsyncGenerator<Listed[]> {
  if (app.storage.driver === 's3') {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3')
    const s3 = app.storage as S3Storage
    let token: string | undefined
    do {
      const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'documents/', ContinuationToken: token, MaxKeys: 1000 }))
      yield (res.Contents ?? []).map(o => ({ key: o.Key ?? '', modified: o.LastModified ?? new Date() }))
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined
    } while (token !== undefined)
    return
  }
  const root = (app.storage as LocalStorage).root
  const dirs = await readdir(join(root, 'documents')).catch(() => [] as string[])
  for (let i = 0; i < dirs.length; i += 500) {
    const batch: Listed[] = []
    for (const dir of dirs.slice(i, i + 500)) {
      const names = await readdir(join(root, 'documents', dir)).catch(() => [] as string[])
      for (const name of names) {
        const s = await stat(join(root, 'documents', dir, name)).catch(() => null)
        if (s?.isFile() === true) batch.push({ key: `documents/${dir}/${name}`, modified: s.mtime })
      }
    }
    yield batch
  }
}

/**
 * Deletes stored objects that no document or pending upload refers to any more, once older than
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
    for await (const page of listDocumentObjects(app)) {
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
      for (const [id, keys] of candidates) {
        if (referenced.has(id)) { known++; continue }
        unknown++
        for (const key of keys) if (orphans.length < RECONCILE_MAX_DELETES) orphans.push(key)
      }
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
    let temps = 0
    if (app.storage.driver === 'local') {
      const tmp = join((app.storage as LocalStorage).root, '.tmp')
      for (const name of await readdir(tmp).catch(() => [] as string[])) {
        const s = await stat(join(tmp, name)).catch(() => null)
        if (s !== null && s.isFile() && s.mtime.getTime() < cutoff) {
          await rm(join(tmp, name), { force: true })
          temps++
        }
      }
    }
    if (deleted > 0 || temps > 0) app.log.info({ scanned, known, unknown, deleted, temps }, 'storage reconciled')
    return { scanned, known, unknown, deleted, temps }
  },
})
