import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils'

/** What the locker needs of an ioredis client (a single Redis or a Cluster). */
export interface LockRedis {
  eval: (script: string, numKeys: number, ...args: Array<string | number>) => Promise<unknown>
}

export interface RedisLockerOptions {
  /** The lock key and the release-request key of upload `id`; they must share a cluster slot (hash tag). */
  keys: (id: string) => { lock: string, release: string }
  /** How long a waiter tries before giving up (tus answers 500 ERR_LOCK_TIMEOUT, the client retries). */
  acquireTimeoutMs?: number
  /** A holder that stops renewing (a crashed process) loses the lock after this long. */
  ttlMs?: number
  /** How often a holder renews and looks for a release request, and a waiter retries. */
  pollMs?: number
}

// Takes the lock, or asks its holder to let go (the release key), in one step.
const ACQUIRE = `if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then redis.call('del', KEYS[2]) return 1 end
redis.call('set', KEYS[2], '1', 'PX', ARGV[2]) return 0`
// Renews the lock while it is ours; answers -1 when lost, 1 when someone asked for it, else 0.
const RENEW = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('pexpire', KEYS[1], ARGV[2]) return redis.call('exists', KEYS[2])`
const RELEASE = 'if redis.call(\'get\', KEYS[1]) == ARGV[1] then redis.call(\'del\', KEYS[1]) end return 0'

/**
 * A tus Locker shared by every API process through Redis (@tus/server's MemoryLocker only sees
 * its own process, so two processes could write one upload at once). A request that wants a
 * locked upload (the client resuming on another process after a cut) sets a release request; the
 * holder sees it at its next renewal and is asked to finish (tus then ends its PATCH, keeping the
 * bytes it got). A holder that dies loses the lock after `ttlMs`.
 */
export class RedisLocker implements Locker {
  readonly acquireTimeoutMs: number
  readonly ttlMs: number
  readonly pollMs: number

  constructor (readonly redis: LockRedis, readonly opts: RedisLockerOptions) {
    this.acquireTimeoutMs = opts.acquireTimeoutMs ?? 30_000
    this.ttlMs = opts.ttlMs ?? 15_000
    this.pollMs = opts.pollMs ?? 200
  }

  newLock (id: string): Lock {
    return new RedisLock(this, id)
  }
}

class RedisLock implements Lock {
  private readonly token = randomUUID()
  private readonly keys: { lock: string, release: string }
  private renewal: NodeJS.Timeout | null = null

  constructor (private readonly locker: RedisLocker, id: string) {
    this.keys = locker.opts.keys(id)
  }

  async lock (signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const { redis, acquireTimeoutMs, ttlMs, pollMs } = this.locker
    const deadline = Date.now() + acquireTimeoutMs
    for (;;) {
      if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT
      if (await redis.eval(ACQUIRE, 2, this.keys.lock, this.keys.release, this.token, ttlMs) === 1) break
      if (Date.now() >= deadline) throw ERRORS.ERR_LOCK_TIMEOUT
      await sleep(pollMs)
    }
    let asked = false
    this.renewal = setInterval(() => {
      redis.eval(RENEW, 2, this.keys.lock, this.keys.release, this.token, ttlMs).then(async (r) => {
        if (r === 0 || asked) return
        asked = true
        await requestRelease()
      }).catch(() => { /* Redis unreachable for a moment: the next renewal tries again */ })
    }, pollMs)
    this.renewal.unref()
  }

  async unlock (): Promise<void> {
    if (this.renewal !== null) clearInterval(this.renewal)
    this.renewal = null
    await this.locker.redis.eval(RELEASE, 2, this.keys.lock, this.keys.release, this.token)
  }
}
