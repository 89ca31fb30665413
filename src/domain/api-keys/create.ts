import type { DbOrTx } from '../../db.js'
import { badRequest, conflict } from '../../lib/errors.js'
import { newId } from '../../lib/ids.js'
import type { Permission } from '../permissions.js'
import { generateKey } from '../../lib/api-key-format.js'
import { countLiveKeys, insertKey, type ApiKeyRow } from './store.js'

/** Live keys one user may hold at once. */
export const API_KEYS_PER_USER_MAX = 100
const DAY_MS = 24 * 3600 * 1000

export interface NewKeyInput { name: string, scopes: readonly string[], expiresAt?: string | null }

/** The scopes the holder lacks, in the order given. */
export const missingScopes = (scopes: readonly string[], held: readonly Permission[]): string[] =>
  [...new Set(scopes)].filter(s => !(held as readonly string[]).includes(s))

/**
 * The expiry of a new key: the one asked for, bounded by `maxTtlDays` (0 = no bound, and no
 * expiry allowed); the bound itself when none is asked for.
 */
export function resolveExpiry (asked: string | null | undefined, maxTtlDays: number, now: Date): Date | null {
  const max = maxTtlDays > 0 ? new Date(now.getTime() + maxTtlDays * DAY_MS) : null
  if (asked === undefined) return max
  if (asked === null) {
    if (max !== null) throw badRequest(`Keys on this server expire within ${maxTtlDays} days (API_KEY_MAX_TTL_DAYS); send an expiresAt up to ${max.toISOString()}, or leave it out`, 'invalid_expiry')
    return null
  }
  const at = new Date(asked)
  if (Number.isNaN(at.getTime()) || at <= now) throw badRequest('expiresAt must be a date-time in the future', 'invalid_expiry')
  if (max !== null && at > max) throw badRequest(`expiresAt is too far: keys on this server expire within ${maxTtlDays} days (API_KEY_MAX_TTL_DAYS), at the latest ${max.toISOString()}`, 'invalid_expiry')
  return at
}

/**
 * Makes a key for `owner` whose scopes are all within `held` (400 scope_not_held naming the
 * others). Returns the row and the key, which exists only here: the caller shows it once.
 */
export async function createKey (db: DbOrTx, owner: { id: string, held: readonly Permission[] }, input: NewKeyInput, opts: { maxTtlDays: number, createdBy: string | null, now: Date }): Promise<{ row: ApiKeyRow, key: string }> {
  const lacking = missingScopes(input.scopes, owner.held)
  if (lacking.length > 0) throw badRequest(`A key can only have permissions its owner has; not held: ${lacking.join(', ')}`, 'scope_not_held')
  const expiresAt = resolveExpiry(input.expiresAt, opts.maxTtlDays, opts.now)
  if (await countLiveKeys(db, owner.id, opts.now) >= API_KEYS_PER_USER_MAX) {
    throw conflict(`This user already has ${API_KEYS_PER_USER_MAX} live API keys; revoke unused ones (DELETE /api-keys/:id) first`, 'too_many_api_keys')
  }
  const secret = generateKey()
  const row: ApiKeyRow = {
    id: newId(),
    publicId: secret.publicId,
    userId: owner.id,
    name: input.name,
    scopes: [...new Set(input.scopes)],
    secretHash: secret.secretHash,
    createdBy: opts.createdBy,
    createdAt: opts.now,
    expiresAt,
    revokedAt: null,
    revokedReason: null,
    lastUsedAt: null,
    lastUsedIp: null,
  }
  await insertKey(db, row)
  return { row, key: secret.key }
}
