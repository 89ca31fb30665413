import type { RedisClient as Redis } from '../redis.js'
import { AppError } from '../lib/errors.js'
import { sha256Hex } from '../lib/tokens.js'

/**
 * Failed-login counters in Redis, per client IP and per account, shared by every API process.
 * A fixed window: the first failure opens it (SET NX EX), later failures INCR inside it.
 * Once either counter reaches the limit, attempts are refused with 429 until the window ends,
 * even with the right password (that is what stops online guessing). A success clears the
 * account counter, not the IP one. Registrations with a taken email count on the same counters
 * (src/domain/auth.ts). If Redis is down the throttle is skipped (logged): logins
 * keep working and bcrypt still bounds the guessing rate.
 */
export interface ThrottleDeps {
  redis: Redis
  key: (...parts: string[]) => string
  max: number
  windowSeconds: number
  log: { warn: (obj: object, msg: string) => void }
}

const keysFor = (deps: ThrottleDeps, ip: string, account: string) => [
  deps.key('login-fail', 'ip', ip),
  // hashed: no email addresses in Redis key names
  deps.key('login-fail', 'acct', sha256Hex(account).slice(0, 32)),
]

export function throttled (retryAfter: number, max: number): AppError {
  const s = String(Math.max(1, retryAfter))
  return new AppError(429, 'rate_limited', `Too many failed attempts, retry in ${s} seconds`, undefined, {
    'retry-after': s, 'x-ratelimit-limit': String(max), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': s,
  })
}

/** Throws 429 when the IP or the account has used up its failures for the window. */
export async function assertNotThrottled (deps: ThrottleDeps, ip: string, account: string): Promise<void> {
  const keys = keysFor(deps, ip, account)
  let counts: Array<string | null>
  try {
    // one GET per key, not MGET: on a Redis Cluster the two keys live in different slots
    counts = await Promise.all(keys.map(async k => await deps.redis.get(k)))
  } catch (err) {
    deps.log.warn({ err }, 'login throttle unavailable')
    return
  }
  let retryAfter = 0
  for (let i = 0; i < keys.length; i++) {
    if (Number(counts[i] ?? 0) >= deps.max) {
      const ttl = await deps.redis.ttl(keys[i] as string).catch(() => deps.windowSeconds)
      retryAfter = Math.max(retryAfter, ttl > 0 ? ttl : deps.windowSeconds)
    }
  }
  if (retryAfter > 0) throw throttled(retryAfter, deps.max)
}

export async function recordFailure (deps: ThrottleDeps, ip: string, account: string): Promise<void> {
  // a transaction per key (both commands on one key: one slot, on a cluster too)
  await Promise.all(keysFor(deps, ip, account).map(async k => await deps.redis.multi().set(k, '0', 'EX', deps.windowSeconds, 'NX').incr(k).exec()))
    .catch((err: unknown) => deps.log.warn({ err }, 'login throttle unavailable'))
}

export async function clearAccount (deps: ThrottleDeps, ip: string, account: string): Promise<void> {
  const [, acct] = keysFor(deps, ip, account)
  await deps.redis.del(acct as string).catch(() => undefined)
}
