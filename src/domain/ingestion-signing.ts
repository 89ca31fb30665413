import { createHmac } from 'node:crypto'
import { safeEqual } from '../lib/tokens.js'

/**
 * The signing scheme shared by both directions (worker -> backend, backend -> callback):
 *   X-Quire-Timestamp: <unix seconds>
 *   X-Quire-Signature: sha256=<hex HMAC-SHA256(secret, `${timestamp}.${rawBody}`)>
 * The timestamp is part of the MAC, so an old request cannot be re-dated.
 */
export const TIMESTAMP_HEADER = 'x-quire-timestamp'
export const SIGNATURE_HEADER = 'x-quire-signature'
/** How far a timestamp may be from our clock, either way. */
export const MAX_SKEW_SECONDS = 300

export function signature (secret: string, timestamp: number | string, rawBody: string | Buffer): string {
  const mac = createHmac('sha256', secret)
  mac.update(`${timestamp}.`)
  mac.update(rawBody)
  return `sha256=${mac.digest('hex')}`
}

/** Headers for a signed request of `rawBody`. */
export function signedHeaders (secret: string, rawBody: string | Buffer, now = Date.now()): Record<string, string> {
  const ts = Math.floor(now / 1000)
  return { [TIMESTAMP_HEADER]: String(ts), [SIGNATURE_HEADER]: signature(secret, ts, rawBody) }
}

export type VerifyResult = { ok: true, signature: string } | { ok: false, reason: string }

/** Checks the timestamp window and the signature of a raw body. */
export function verifySignature (secret: string, headers: Record<string, string | string[] | undefined>, rawBody: Buffer, now = Date.now()): VerifyResult {
  const ts = headers[TIMESTAMP_HEADER]
  const sig = headers[SIGNATURE_HEADER]
  if (typeof ts !== 'string' || !/^\d{1,12}$/.test(ts)) return { ok: false, reason: `Missing or malformed ${TIMESTAMP_HEADER} header` }
  if (typeof sig !== 'string' || !/^sha256=[0-9a-f]{64}$/i.test(sig)) return { ok: false, reason: `Missing or malformed ${SIGNATURE_HEADER} header` }
  if (Math.abs(Math.floor(now / 1000) - Number(ts)) > MAX_SKEW_SECONDS) return { ok: false, reason: `Timestamp is more than ${MAX_SKEW_SECONDS} s away from the server clock` }
  const expected = signature(secret, ts, rawBody)
  if (!safeEqual(expected, sig.toLowerCase())) return { ok: false, reason: 'Signature does not match' }
  return { ok: true, signature: expected }
}
