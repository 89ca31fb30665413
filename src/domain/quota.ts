import { and, eq, lt, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../db.js'
import { quotaReservations, quotaSharedHolds, users } from '../../drizzle/schema/index.js'
import { AppError } from '../lib/errors.js'
import { newId } from '../lib/ids.js'

/*
 * Storage quotas (issue 24). A user's usage (`users.used_bytes`) is the size of every stored
 * version of every document they own, trashed ones included until purged. Its limit is their own
 * `quota_bytes`, or QUOTA_DEFAULT_BYTES when that is null; 0 means unlimited.
 *
 * Every upload path reserves before it stores a byte: one conditional UPDATE adds the bytes to
 * `reserved_bytes` only if used + reserved + bytes stays within the limit, so concurrent uploads
 * cannot jointly overshoot (InnoDB re-evaluates the condition under the row lock; nothing is read
 * first). The reservation has a row in quota_reservations; completion settles it to the real
 * size in the transaction that records the object (`settleQuota`), failure, abort or expiry
 * releases it (`releaseQuota`, idempotent). Both take the reservation row before the user row,
 * as `reserve` does, so they never deadlock with each other.
 *
 * Uploads by someone other than the owner (a write share, documents:manage) hold the owner's
 * quota too, so one such user could tie it up with uploads they never finish. Each reservation
 * records who holds it (`held_by`); a holder's bytes against another user's quota are also summed
 * in quota_shared_holds (owner, holder), and a second conditional UPDATE, on that row, refuses
 * (413 `shared_upload_limit`) a reservation that would take them over QUOTA_SHARED_RESERVE_MAX_BYTES
 * when the owner has a quota. Both UPDATEs run after the owner's row is locked by the first, so
 * all reservations against one owner queue there, and two of one holder cannot both pass the cap.
 * Settle and release take the hold back in the same transaction, after the user row (the same
 * order: reservation row, user row, hold row).
 *
 * Usage goes down when bytes go for good: a purge (deleteDocumentRow) and version pruning
 * (deleteVersionRows) call `chargeUsage` with a negative delta in their transaction. The trash
 * does not give bytes back (the bytes are still stored).
 */

/** `userId`: whose quota holds the bytes (the owner of what is uploaded); `heldBy`: who is uploading. */
export interface Reservation { id: string, userId: string, heldBy: string, bytes: number }

export const MAX_QUOTA_BYTES = Number.MAX_SAFE_INTEGER
/** A reservation nobody settled or released (its process died) is released by the uploads sweep after this. */
export const RESERVATION_TTL_MS = 24 * 3600 * 1000

export interface QuotaUsage { usedBytes: number, reservedBytes: number, quotaBytes: number }

function assertBytes (n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`${what} must be a whole number of bytes >= 0, got ${n}`)
}

/** The limit that applies: the user's own, else the default; 0 = unlimited. */
export const effectiveQuota = (own: number | null, defaultBytes: number): number => own ?? defaultBytes

export function quotaExceeded (need: number, u: { usedBytes: number, reservedBytes: number } | undefined, limit: number): AppError {
  const state = u !== undefined
    ? `${u.usedBytes} of ${limit} bytes are used${u.reservedBytes > 0 ? ` and ${u.reservedBytes} are held by uploads in progress` : ''}`
    : `the quota is ${limit} bytes`
  return new AppError(413, 'quota_exceeded', `Storage quota exceeded: this needs ${need} bytes, ${state}. ` +
    'Delete documents or versions and empty them from the trash (the trash still counts), or ask an admin for a larger quota')
}

export function sharedLimitExceeded (need: number, held: number, cap: number): AppError {
  return new AppError(413, 'shared_upload_limit', `This upload needs ${need} bytes of the document owner's storage quota, ` +
    `and you already hold ${held} bytes of it in uploads you have not finished; someone other than the owner may hold at most ${cap} ` +
    '(QUOTA_SHARED_RESERVE_MAX_BYTES) at a time, so that they cannot tie up the owner\'s quota. ' +
    'Complete or cancel (DELETE /uploads/:id) your other uploads into this owner\'s documents, or wait for them to expire')
}

export interface QuotaLimits {
  /** QUOTA_DEFAULT_BYTES: the quota of a user without one of their own; 0 = unlimited */
  defaultBytes: number
  /** QUOTA_SHARED_RESERVE_MAX_BYTES: the most one holder may reserve against another user's quota; 0 = no cap */
  sharedMaxBytes: number
}

/**
 * Holds `bytes` against the quota of `userId` for `heldBy` (the uploader), or throws 413
 * `quota_exceeded`, or, when `heldBy` is not `userId`, 413 `shared_upload_limit` if their
 * reservations against this quota would go over `limits.sharedMaxBytes` (nothing held then).
 * `id`: the reservation's id (a pre-signed upload uses its own id); `expiresAt`: when the sweep
 * may release it if it is still there.
 */
export async function reserveQuota (db: Db, limits: QuotaLimits, userId: string, bytes: number,
  opts: { heldBy: string, id?: string, expiresAt?: Date }): Promise<Reservation> {
  assertBytes(bytes, 'reserved size')
  const { defaultBytes, sharedMaxBytes } = limits
  const now = new Date()
  const r: Reservation = { id: opts.id ?? newId(), userId, heldBy: opts.heldBy, bytes }
  await db.transaction(async (tx) => {
    await tx.insert(quotaReservations).values({ ...r, createdAt: now, expiresAt: opts.expiresAt ?? new Date(now.getTime() + RESERVATION_TTL_MS) })
    const [res] = await tx.update(users).set({ reservedBytes: sql`${users.reservedBytes} + ${bytes}` }).where(sql`${users.id} = ${userId} AND (
      COALESCE(${users.quotaBytes}, ${defaultBytes}) = 0 OR ${users.usedBytes} + ${users.reservedBytes} + ${bytes} <= COALESCE(${users.quotaBytes}, ${defaultBytes}))`)
    if (res.affectedRows !== 1) {
      // Refused (the transaction rolls back the reservation row): read the numbers for the message only.
      const [u] = await tx.select({ usedBytes: users.usedBytes, reservedBytes: users.reservedBytes, quotaBytes: users.quotaBytes }).from(users).where(eq(users.id, userId))
      throw quotaExceeded(bytes, u, effectiveQuota(u?.quotaBytes ?? null, defaultBytes))
    }
    if (r.heldBy === userId) return
    // Someone else's upload: the owner's row is now locked by this transaction, so reservations
    // against this owner pass here one at a time. The hold row exists (locked), then one
    // conditional UPDATE adds the bytes if the owner has no quota, or there is no cap, or the
    // holder stays within it.
    await tx.insert(quotaSharedHolds).values({ userId, heldBy: r.heldBy, bytes: 0 }).onDuplicateKeyUpdate({ set: { bytes: sql`${quotaSharedHolds.bytes}` } })
    const [held] = await tx.update(quotaSharedHolds).set({ bytes: sql`${quotaSharedHolds.bytes} + ${bytes}` }).where(sql`${quotaSharedHolds.userId} = ${userId} AND ${quotaSharedHolds.heldBy} = ${r.heldBy} AND (
      ${sharedMaxBytes} = 0 OR ${quotaSharedHolds.bytes} + ${bytes} <= ${sharedMaxBytes}
      OR (SELECT COALESCE(${users.quotaBytes}, ${defaultBytes}) FROM ${users} WHERE ${users.id} = ${userId}) = 0)`)
    if (held.affectedRows === 1) return
    const [h] = await tx.select({ bytes: quotaSharedHolds.bytes }).from(quotaSharedHolds).where(and(eq(quotaSharedHolds.userId, userId), eq(quotaSharedHolds.heldBy, r.heldBy)))
    throw sharedLimitExceeded(bytes, h?.bytes ?? 0, sharedMaxBytes)
  })
  return r
}

/**
 * Takes the reservation row (locked, then deleted) and gives its bytes back, to the owner's
 * `reserved_bytes` and, for someone else's upload, to their hold (removed at 0); null when it was
 * already settled or released.
 */
async function takeReservation (tx: DbOrTx, id: string): Promise<{ userId: string, bytes: number } | null> {
  const [row] = await tx.select({ userId: quotaReservations.userId, heldBy: quotaReservations.heldBy, bytes: quotaReservations.bytes })
    .from(quotaReservations).where(eq(quotaReservations.id, id)).for('update')
  if (row === undefined) return null
  await tx.delete(quotaReservations).where(eq(quotaReservations.id, id))
  await tx.update(users).set({ reservedBytes: sql`GREATEST(${users.reservedBytes} - ${row.bytes}, 0)` }).where(eq(users.id, row.userId))
  if (row.heldBy !== null && row.heldBy !== row.userId) {
    const hold = and(eq(quotaSharedHolds.userId, row.userId), eq(quotaSharedHolds.heldBy, row.heldBy))
    await tx.update(quotaSharedHolds).set({ bytes: sql`GREATEST(${quotaSharedHolds.bytes} - ${row.bytes}, 0)` }).where(hold)
    await tx.delete(quotaSharedHolds).where(and(hold, eq(quotaSharedHolds.bytes, 0)))
  }
  return row
}

/**
 * Completion: the reservation is replaced by the real size, charged to `chargeTo` (the owner of
 * the document the bytes now belong to; the reserving user by default). Call it in the
 * transaction that records the object, so usage and rows never disagree. A reservation already
 * released (expired meanwhile) is fine: the stored bytes are charged all the same.
 */
export async function settleQuota (tx: DbOrTx, reservationId: string, actualBytes: number, chargeTo?: string): Promise<void> {
  assertBytes(actualBytes, 'settled size')
  const held = await takeReservation(tx, reservationId)
  const owner = chargeTo ?? held?.userId
  if (owner !== undefined && actualBytes > 0) await chargeUsage(tx, owner, actualBytes)
}

/** Failure, abort or expiry: the reservation's bytes are free again. Idempotent; false when there was nothing to release. */
export async function releaseQuota (db: Db, reservationId: string): Promise<boolean> {
  return await db.transaction(async (tx) => await takeReservation(tx, reservationId) !== null)
}

/** Adds `delta` bytes (negative: bytes deleted for good) to a user's usage, never below 0. */
export async function chargeUsage (tx: DbOrTx, userId: string, delta: number): Promise<void> {
  if (delta === 0) return
  await tx.update(users).set({ usedBytes: sql`GREATEST(${users.usedBytes} + ${delta}, 0)` }).where(eq(users.id, userId))
}

/** Reservations past their expiry (processes that died mid-upload): the uploads sweep releases them. */
export async function expiredReservations (db: Db, before: Date, limit: number): Promise<string[]> {
  const rows = await db.select({ id: quotaReservations.id }).from(quotaReservations).where(lt(quotaReservations.expiresAt, before)).orderBy(quotaReservations.expiresAt).limit(limit)
  return rows.map(r => r.id)
}

/** What GET /auth/me shows: `quotaBytes` is the limit that applies (0 = unlimited). */
export const quotaUsage = (u: { usedBytes: number, reservedBytes: number, quotaBytes: number | null }, defaultBytes: number): QuotaUsage =>
  ({ usedBytes: u.usedBytes, reservedBytes: u.reservedBytes, quotaBytes: effectiveQuota(u.quotaBytes, defaultBytes) })

/**
 * The API every upload path uses (multipart, pre-signed and versions here; tus the same way):
 * reserve before the first byte, then settle (in the recording transaction) or release.
 */
export function quotaService (deps: { db: Db } & QuotaLimits) {
  const { db } = deps
  return {
    /**
     * Holds `bytes` against the quota of `userId` (the owner of what is being uploaded) for
     * `opts.heldBy` (the uploader), or throws 413 quota_exceeded / shared_upload_limit.
     */
    reserve: async (userId: string, bytes: number, opts: { heldBy: string, id?: string, expiresAt?: Date }): Promise<Reservation> =>
      await reserveQuota(db, deps, userId, bytes, opts),
    /** Replaces the reservation by the real size; pass `tx` to do it in the transaction that records the object. */
    settle: async (reservation: Pick<Reservation, 'id'>, actualBytes: number, opts: { tx?: DbOrTx, chargeTo?: string } = {}): Promise<void> => {
      if (opts.tx !== undefined) return await settleQuota(opts.tx, reservation.id, actualBytes, opts.chargeTo)
      await db.transaction(async (tx) => await settleQuota(tx, reservation.id, actualBytes, opts.chargeTo))
    },
    release: async (reservation: Pick<Reservation, 'id'>): Promise<boolean> => await releaseQuota(db, reservation.id),
  }
}

export type QuotaService = ReturnType<typeof quotaService>
