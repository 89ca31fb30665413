import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { and, eq, gt } from 'drizzle-orm'
import type { Db } from '../db.js'
import { uploads } from '../../drizzle/schema/index.js'
import { StorageNotFound, type PutResult, type Storage } from '../storage/types.js'
import { AppError, conflict } from '../lib/errors.js'
import { isId } from '../lib/ids.js'
import { inspect, isAllowedType, unsupportedType, type UploadRow } from './uploads.js'
import { releaseQuota } from './quota.js'

/*
 * The rule for bytes sent through an upload URL (the pre-signed upload today; document versions or
 * tus tomorrow): they land on the upload's own staging key, never on a document's key. Only the
 * server moves them to their final key, after claiming the upload, and checks them THERE, so what
 * was checked is what stays: a URL used again later can only write to the staging key, which
 * nothing reads any more (local storage refuses such a PUT; S3 cannot, and the uploads sweep
 * deletes what it wrote).
 *
 * An upload row's status: pending (URL usable) -> completing (claimed by a complete) -> completed
 * (in the transaction that creates the document), or back to pending (no bytes yet); cancelled
 * (DELETE /uploads/:id, or discarded by a failed check). Finished rows are kept until the sweep
 * removes them after their expiry, so a late PUT is told why it is refused.
 */

export const STAGING_PREFIX = 'uploads/'
export const stagingKey = (uploadId: string): string => `${STAGING_PREFIX}${uploadId}`
/** The upload a staging key belongs to, or null when the key is not a staging key. */
export function stagingUploadId (key: string): string | null {
  const id = key.startsWith(STAGING_PREFIX) ? key.slice(STAGING_PREFIX.length) : ''
  return isId(id) ? id : null
}

/** Why bytes may not be written for this upload now, or null when they may. */
export function uploadWriteRefusal (row: Pick<UploadRow, 'status' | 'expiresAt'> | undefined, now = Date.now()): AppError | null {
  if (row === undefined) return new AppError(410, 'upload_gone', 'This upload no longer exists; start a new one')
  switch (row.status) {
    case 'pending':
      return row.expiresAt.getTime() > now ? null : new AppError(410, 'upload_expired', 'This upload expired; start a new one')
    case 'completing':
    case 'completed':
      return conflict('This upload was already completed; its URL accepts no more bytes', 'upload_completed')
    default:
      return new AppError(410, 'upload_cancelled', 'This upload was cancelled or discarded; start a new one')
  }
}

async function uploadState (db: Db, id: string): Promise<Pick<UploadRow, 'status' | 'expiresAt'> | undefined> {
  const [row] = await db.select({ status: uploads.status, expiresAt: uploads.expiresAt }).from(uploads).where(eq(uploads.id, id)).limit(1)
  return row
}

/**
 * Every URL that writes upload bytes goes through here: refused (403) unless `key` is a staging
 * key, 409/410 unless its upload is pending; then `write` runs, and the state is checked again,
 * since a complete or cancel may have come meanwhile: then the bytes are deleted (unless a
 * complete is still running, which moves or leaves them; the sweep deletes leftovers) and the
 * writer hears 409/410 too.
 */
export async function acceptUploadBytes (db: Db, storage: Storage, key: string, write: () => Promise<PutResult>): Promise<PutResult> {
  const id = stagingUploadId(key)
  if (id === null) throw new AppError(403, 'invalid_signature', 'This URL does not accept uploads; start one with POST /uploads and PUT to the uploadUrl it returns')
  const before = uploadWriteRefusal(await uploadState(db, id))
  if (before !== null) throw before
  const result = await write()
  const row = await uploadState(db, id)
  const after = uploadWriteRefusal(row)
  if (after !== null) {
    if (row?.status !== 'completing') await storage.delete(key)
    throw after
  }
  return result
}

/** Pending -> completing for its owner, before its expiry; false when another request got there first. */
export async function claimUpload (db: Db, up: UploadRow): Promise<boolean> {
  const [res] = await db.update(uploads).set({ status: 'completing' })
    .where(and(eq(uploads.id, up.id), eq(uploads.userId, up.userId), eq(uploads.status, 'pending'), gt(uploads.expiresAt, new Date())))
  return res.affectedRows === 1
}

async function setStatus (db: Db, id: string, from: string, to: string): Promise<void> {
  await db.update(uploads).set({ status: to }).where(and(eq(uploads.id, id), eq(uploads.status, from)))
}

/**
 * A claimed upload whose complete failed: the row is cancelled, its quota reservation released,
 * then its bytes (wherever they are) deleted. Nothing is deleted when the upload is no longer claimed: if it turned `completed`, a
 * document owns the bytes at `target` (a failure after the insert must not take them away). A
 * crash in between leaves bytes at `target` for storage-reconcile.
 */
export async function discardUpload (db: Db, storage: Storage, up: UploadRow, target?: string): Promise<void> {
  const [res] = await db.update(uploads).set({ status: 'cancelled' }).where(and(eq(uploads.id, up.id), eq(uploads.status, 'completing')))
  if (res.affectedRows !== 1) return
  await releaseQuota(db, up.id)
  if (target !== undefined) await storage.delete(target)
  await storage.delete(up.storageKey)
}

/** DELETE /uploads/:id: the caller's pending upload is cancelled, its quota reservation released and its bytes deleted; false when there is none. */
export async function cancelUpload (db: Db, storage: Storage, userId: string, id: string): Promise<boolean> {
  if (!isId(id)) return false
  const [res] = await db.update(uploads).set({ status: 'cancelled' })
    .where(and(eq(uploads.id, id), eq(uploads.userId, userId), eq(uploads.status, 'pending')))
  if (res.affectedRows !== 1) return false
  await releaseQuota(db, id)
  await storage.delete(stagingKey(id))
  return true
}

export interface Promoted { mimeType: string, size: number, sha256: string }

/**
 * Moves a claimed upload's bytes from staging to `target`, then checks them there: size, sha256
 * (when declared), sniffed type. Any failure discards the upload (400/415); no bytes yet puts it
 * back to pending (409 upload_incomplete). The caller records the result and marks the upload
 * completed in the same transaction (insertDocument's `claimUploadId`).
 */
export async function promoteUpload (db: Db, storage: Storage, up: UploadRow, target: string, allowedTypes: string): Promise<Promoted> {
  try {
    await storage.move(up.storageKey, target)
  } catch (err) {
    await setStatus(db, up.id, 'completing', 'pending')
    if (err instanceof StorageNotFound) throw conflict('No bytes were uploaded to the URL yet; PUT the file to uploadUrl first', 'upload_incomplete')
    throw err
  }
  try {
    const info = await storage.head(target)
    if (info === null || info.size !== up.size) {
      throw new AppError(400, 'size_mismatch', `Expected ${up.size} bytes, received ${info?.size ?? 0}; the upload was discarded`)
    }
    const inspected = await inspect(await storage.get(target), { maxBytes: up.size, declaredType: up.mimeType })
    if (!isAllowedType(inspected.mimeType, allowedTypes)) {
      inspected.body.destroy()
      throw unsupportedType(inspected.mimeType)
    }
    await pipeline(inspected.body, new Writable({ write (_c, _e, cb) { cb() } }))
    const { size, sha256 } = inspected.result()
    if (size !== up.size || (up.sha256 !== null && sha256 !== up.sha256)) {
      throw new AppError(400, 'checksum_mismatch', 'The uploaded bytes do not match the declared sha256; the upload was discarded')
    }
    return { mimeType: inspected.mimeType, size, sha256 }
  } catch (err) {
    await discardUpload(db, storage, up, target)
    throw err
  }
}
