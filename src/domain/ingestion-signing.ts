import { createHmac } from 'node:crypto'
import { safeEqual } from '../lib/tokens.js'

/**
 * The signing scheme shared by both directions (worker -> backend, backend -> callback):
 *   X-Quire-Timestamp: <unix seconds>
 *   X-Quire-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>\n<METHOD>\n<path>\n<raw body>")>
 * `path` is the path (and query, if any) of the URL the sender was given: INGESTION_URL for the
 * dispatch, the payload's `callbackUrl` for a callback. The timestamp is part of the MAC, so an
 * old request cannot be re-dated; the method and path bind it to one endpoint, so a callback
 * signed for one ingestion is worthless on another. Newlines cannot occur in the first three
 * fields, so the signed string splits one way only.
 */
export const TIMESTAMP_HEADER = 'x-quire-timestamp'
export const SIGNATURE_HEADER = 'x-quire-signature'
/** How far a timestamp may be from our clock, either way. */
export const MAX_SKEW_SECONDS = 300

/** What a signature is bound to besides the body: the request's method and path. */
export interface SignedTarget { method: string, path: string }

/** The path a signature covers for `url`: its path plus query (the HTTP request-target). */
export function signedPath (url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url
  return `${u.pathname}${u.search}`
}

/** The callback URL Quire hands the backend for ingestion `id` (ids are lower-case). */
export const callbackUrl = (publicUrl: string, id: string): string => `${publicUrl.replace(/\/+$/, '')}/ingestions/${id}/callback`

export function signature (secret: string, timestamp: number | string, target: SignedTarget, rawBody: string | Buffer): string {
  const mac = createHmac('sha256', secret)
  mac.update(`${timestamp}\n${target.method.toUpperCase()}\n${target.path}\n`)
  mac.update(rawBody)
  return `sha256=${mac.digest('hex')}`
}

/** Headers for a signed request of `rawBody` to `target`. */
export function signedHeaders (secret: string, target: SignedTarget, rawBody: string | Buffer, now = Date.now()): Record<string, string> {
  const ts = Math.floor(now / 1000)
  return { [TIMESTAMP_HEADER]: String(ts), [SIGNATURE_HEADER]: signature(secret, ts, target, rawBody) }
}

export type VerifyResult = { ok: true, signature: string } | { ok: false, reason: string }

/** Checks the timestamp window and the signature of a raw body sent to `target`. */
export function verifySignature (secret: string, headers: Record<string, string | string[] | undefined>, target: SignedTarget, rawBody: Buffer, now = Date.now()): VerifyResult {
  const ts = headers[TIMESTAMP_HEADER]
  const sig = headers[SIGNATURE_HEADER]
  if (typeof ts !== 'string' || !/^\d{1,12}$/.test(ts)) return { ok: false, reason: `Missing or malformed ${TIMESTAMP_HEADER} header` }
  if (typeof sig !== 'string' || !/^sha256=[0-9a-f]{64}$/i.test(sig)) return { ok: false, reason: `Missing or malformed ${SIGNATURE_HEADER} header` }
  if (Math.abs(Math.floor(now / 1000) - Number(ts)) > MAX_SKEW_SECONDS) return { ok: false, reason: `Timestamp is more than ${MAX_SKEW_SECONDS} s away from the server clock` }
  const expected = signature(secret, ts, target, rawBody)
  if (!safeEqual(expected, sig.toLowerCase())) return { ok: false, reason: `Signature does not match (HMAC-SHA256 over "<timestamp>\\n${target.method.toUpperCase()}\\n${target.path}\\n<raw body>")` }
  return { ok: true, signature: expected }
}
