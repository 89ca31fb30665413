import { randomBytes } from 'node:crypto'
import { safeEqual, sha256Hex } from './tokens.js'

/**
 * The key a client holds: `qk_<public id>_<secret>`. The public id (16 hex characters) names the
 * row and may be shown (the key's `prefix`); the secret is 32 random bytes (256 bits, base64url)
 * and is stored only as its SHA-256: a slow password hash buys nothing against a 256-bit secret,
 * and the check runs on every request.
 */
export const KEY_PREFIX = 'qk_'
const KEY_RE = /^qk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/
/** Anything that looks like a key, wherever it appears in a text (for the log redaction). */
export const KEY_IN_TEXT = /qk_([0-9a-f]{16})_[A-Za-z0-9_-]{20,}/g

export interface NewKeySecret { publicId: string, secret: string, key: string, secretHash: string }

export function generateKey (): NewKeySecret {
  const publicId = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return { publicId, secret, key: `${KEY_PREFIX}${publicId}_${secret}`, secretHash: hashSecret(secret) }
}

/** True for a bearer token in the API key format (anything else is a JWT access token). */
export const looksLikeKey = (token: string): boolean => token.length > 3 && token.slice(0, 3).toLowerCase() === KEY_PREFIX

/** The key's parts, or null when it is not a well-formed key. */
export function parseKey (token: string): { publicId: string, secret: string } | null {
  const m = KEY_RE.exec(token)
  return m === null ? null : { publicId: m[1]!, secret: m[2]! }
}

export const hashSecret = (secret: string): string => sha256Hex(secret)

/** Constant-time check of a presented secret against the stored hash. */
export const secretMatches = (secret: string, secretHash: string): boolean => safeEqual(hashSecret(secret), secretHash)

/** What a key is shown as after its creation: `qk_<public id>`. */
export const keyPrefix = (publicId: string): string => `${KEY_PREFIX}${publicId}`
