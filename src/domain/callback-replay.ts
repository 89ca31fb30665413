import { randomUUID } from 'node:crypto'
import type { RedisClient as Redis } from '../redis.js'

/**
 * Replay protection for signed callbacks, claimed in two steps so that only an applied callback
 * is remembered: `claim` marks the signature pending (SET NX: of two identical requests at once
 * only one proceeds), `commit` marks it applied for the replay window, `release` forgets a
 * pending claim whose callback failed, so the same signed request can be delivered again.
 * A process that dies mid-apply leaves a pending claim that expires after PENDING_TTL_SECONDS.
 */
const PENDING_TTL_SECONDS = 60
const APPLIED = 'applied'

// Deletes the key only if it still holds our pending token (it may have expired and been re-claimed).
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

export type Claim =
  | { state: 'claimed', commit: () => Promise<void>, release: () => Promise<void> }
  | { state: 'replayed' | 'in_progress' }

export async function claimCallback (redis: Pick<Redis, 'set' | 'get' | 'eval'>, key: string, replayTtlSeconds: number): Promise<Claim> {
  const token = `pending:${randomUUID()}`
  if (await redis.set(key, token, 'EX', PENDING_TTL_SECONDS, 'NX') === 'OK') {
    return {
      state: 'claimed',
      commit: async () => { await redis.set(key, APPLIED, 'EX', replayTtlSeconds) },
      release: async () => { await redis.eval(RELEASE_SCRIPT, 1, key, token) },
    }
  }
  const held = await redis.get(key)
  return { state: held === APPLIED ? 'replayed' : 'in_progress' }
}
