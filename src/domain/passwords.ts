import { createHash } from 'node:crypto'
import { hash, verify } from '@node-rs/bcrypt'

/** Password policy (NIST 800-63B style): length only, no composition rules. */
export const PASSWORD_MIN = 8
export const PASSWORD_MAX = 128

/**
 * bcrypt reads at most 72 bytes, so a long (or multibyte) password would be silently truncated.
 * We pre-hash instead: bcrypt runs over base64(sha256(NFC(password))), 44 ASCII bytes, so every
 * character of the password counts. NFC makes the same visible password typed on different
 * platforms hash alike.
 */
function prehash (password: string): string {
  return createHash('sha256').update(password.normalize('NFC'), 'utf8').digest('base64')
}

export async function hashPassword (password: string, cost: number): Promise<string> {
  return await hash(prehash(password), cost)
}

export async function verifyPassword (password: string, passwordHash: string): Promise<boolean> {
  try {
    return await verify(prehash(password), passwordHash)
  } catch {
    return false
  }
}

/** True when a stored hash was made with another cost than the configured one (rehash on login). */
export function needsRehash (passwordHash: string, cost: number): boolean {
  const match = /^\$2[abxy]\$(\d\d)\$/.exec(passwordHash)
  return match === null || Number(match[1]) !== cost
}

const dummies = new Map<number, Promise<string>>()

/**
 * Verifies against a throwaway hash of the same cost, so a login for an unknown email costs
 * as much time as a wrong password for a known one (no user enumeration by timing).
 */
export async function burnVerify (password: string, cost: number): Promise<void> {
  let dummy = dummies.get(cost)
  if (dummy === undefined) {
    dummy = hashPassword('quire-dummy-password-for-timing', cost)
    dummies.set(cost, dummy)
  }
  await verifyPassword(password, await dummy)
}
