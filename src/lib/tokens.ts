import { createHash, randomBytes, createHmac, timingSafeEqual } from 'node:crypto'

export const sha256Hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

/** A random opaque token (256 bits, base64url). */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url')

export const hmacHex = (secret: string, data: string | Buffer): string => createHmac('sha256', secret).update(data).digest('hex')

/** Constant-time comparison of two hex/ascii strings. */
export function safeEqual (a: string, b: string): boolean {
  const ba = Buffer.from(a)
  const bb = Buffer.from(b)
  return ba.length === bb.length && timingSafeEqual(ba, bb)
}
