import type { Db } from '../db.js'
import { AppError } from '../lib/errors.js'
import { withTimeout } from '../lib/timeout.js'
import { joinNext } from '../lib/join-next.js'
import { covers, type Flavour } from './gtid.js'
import type { PublishedPosition } from './replica-fence.js'
import { POSITION, WAIT, scalar, type ReadRouter, type ReplicaState } from './read-router.js'

/**
 * Read routing for an optional MySQL/MariaDB read replica (DATABASE_REPLICA_URL).
 *
 * Only the list and search reads go through `read()`; everything else (the access rule on one
 * object, permission checks, API keys, sessions, every write) uses the primary directly. A read
 * goes to the replica only once the replica has applied everything the primary had committed when
 * the read began (a GTID fence): the primary's position (`@@gtid_binlog_pos` on MariaDB,
 * `@@GLOBAL.gtid_executed` on MySQL), then the replica waits for it (`MASTER_GTID_WAIT` /
 * `WAIT_FOR_EXECUTED_GTID_SET`) for at most `maxWaitMs`. So a list is never older than the request:
 * a client's own writes are in it (read-your-writes, whichever API process took the write), and a
 * revoked share, a trashed document or a disabled account is effective at once, though the list's
 * access rule runs on the replica.
 *
 * Circuit breaker: a replica that fails (connection refused, an error) or lags past `maxWaitMs` is
 * left alone for `retryMs`, during which reads go straight to the primary without waiting; then one
 * read probes it again. A replica read that fails is run again on the primary (errors of the
 * domain, AppError, are the caller's and are not).
 *
 * Cost: the primary's position is one tiny query shared by every read that arrives while one is in
 * flight (a read joins the next query that starts after it arrived, never an older one), and the
 * replica's wait is skipped when it is known to have reached that position already. While no
 * write comes in (the last read found the replica already there), a read runs its list on the
 * replica alongside the position query rather than after it: the list is kept only when a
 * position the replica had applied before the list began covers the primary's; otherwise it is
 * discarded and the read takes the fence as above (`stats().discarded`).
 */
export interface ReplicaOptions {
  /** How long a read waits for the replica to catch up before it reads the primary. */
  maxWaitMs: number
  /** How long a failed or lagging replica is left alone. */
  retryMs: number
  log: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  now?: () => number
  /** Where writers publish the primary's position (Redis); without it every read asks the primary. */
  published?: PublishedPosition
  /** Before this time (ms) published positions are not trusted (every process had to learn that this one reads a replica). */
  trustFrom?: () => number
}

export function replicaRouter (primary: Db, replica: Db, opts: ReplicaOptions): ReadRouter {
  const now = opts.now ?? Date.now
  let flavour: Flavour | null = null
  let unsupported = false
  let state: ReplicaState = 'ok'
  let openUntil = 0
  let probing = false
  let reached: string | null = null
  const waits = new Map<string, Promise<boolean>>()
  const counts = { replica: 0, primary: 0, discarded: 0, positions: 0, published: 0 }
  /** The last fence found the replica there already: the next read may run its list ahead of the position. */
  let quiet = false

  /** The primary's flavour, and whether it keeps GTIDs at all (without them nothing can be fenced). */
  async function detect (): Promise<Flavour | null> {
    if (flavour !== null || unsupported) return flavour
    const version = String(await scalar(primary, 'SELECT VERSION()'))
    const f: Flavour = /mariadb/i.test(version) ? 'mariadb' : 'mysql'
    const logBin = Number(await scalar(primary, 'SELECT @@GLOBAL.log_bin'))
    const gtid = f === 'mysql' ? String(await scalar(primary, 'SELECT @@GLOBAL.gtid_mode')) : 'ON'
    if (logBin !== 1 || gtid !== 'ON') {
      unsupported = true
      state = 'unsupported'
      opts.log.error({ version, logBin, gtid }, 'DATABASE_REPLICA_URL is set but the primary has no binary log with GTIDs (MySQL: gtid_mode=ON; MariaDB: log_bin): every read goes to the primary')
      return null
    }
    flavour = f
    return f
  }

  const position = joinNext(async () => {
    counts.positions++
    return String(await scalar(primary, POSITION[flavour ?? 'mariadb']) ?? '')
  })
  const published = opts.published
  let publishing: { pos: string, done: Promise<void> } | null = null
  /** False after `distrust()`, until this process published again (a store begun after it). */
  let trusted = true
  let distrusts = 0
  /**
   * Stores `pos` as the newest published position (one store per position, however many ask);
   * `since`: the count of distrusts read before `pos` was (trust comes back only with a newer position).
   */
  async function publish (f: Flavour, pos: string, since: number): Promise<void> {
    if (published === undefined) return
    if (publishing?.pos !== pos) {
      const done: Promise<void> = published.set(f, pos)
        .then(() => { if (distrusts === since) trusted = true })
        .finally(() => { if (publishing?.done === done) publishing = null })
      publishing = { pos, done }
    }
    await publishing.done
  }

  /**
   * What this read must see: the position the writers published, fetched with the request's first
   * Redis round trip (`hint`); without one (none published, Redis lost it or failed), the
   * primary's own, which is then published for the reads after it.
   */
  async function wanted (f: Flavour, hint?: Promise<string | null> | null): Promise<string> {
    if (hint === undefined || hint === null) return await position()
    const pub = await hint.catch(() => null)
    if (pub !== null && trusted && now() >= (opts.trustFrom?.() ?? 0)) {
      counts.published++
      return pub
    }
    const since = distrusts // before the query: only a position read after a distrust restores trust
    const pos = await position()
    publish(f, pos, since).catch(() => { /* the next read tries again */ })
    return pos
  }

  async function waitFor (f: Flavour, pos: string): Promise<boolean> {
    if (reached !== null && covers(f, reached, pos)) return true
    let w = waits.get(pos)
    if (w === undefined) {
      // The guard covers a replica that hangs without answering (the server's own timeout is maxWaitMs).
      w = withTimeout(scalar(replica, WAIT[f], [pos, opts.maxWaitMs / 1000]), opts.maxWaitMs + 2000, 'replica did not answer')
        .then(r => Number(r) === 0)
        .finally(() => waits.delete(pos))
      waits.set(pos, w)
    }
    const ok = await w
    // Keep the newest position known reached (waits may end out of order).
    if (ok && (reached === null || covers(f, pos, reached))) reached = pos
    return ok
  }

  function trip (next: 'lagging' | 'down', err?: unknown): void {
    if (state === 'ok') opts.log.warn({ err, retryMs: opts.retryMs }, next === 'down' ? 'read replica failed: lists read the primary for now' : 'read replica lags: lists read the primary for now')
    state = next
    openUntil = now() + opts.retryMs
  }

  /** Whether this read may use the replica: the breaker is closed (or this read is its probe) and the replica caught up. */
  async function fence (known: string | undefined, hint: Promise<string | null> | null | undefined): Promise<boolean> {
    let probe = false
    if (state !== 'ok') {
      if (unsupported || probing || now() < openUntil) return false
      probing = probe = true
    }
    try {
      const f = await detect()
      if (f === null) return false
      let pos: string
      try {
        pos = known ?? await wanted(f, hint)
      } catch {
        return false // the primary's trouble: the read on the primary reports it
      }
      quiet = reached !== null && covers(f, reached, pos)
      let ok: boolean
      try {
        ok = await waitFor(f, pos)
      } catch (err) {
        trip('down', err)
        return false
      }
      if (!ok) {
        trip('lagging')
        return false
      }
      if (state !== 'ok') opts.log.warn({}, 'read replica is back: lists read it again')
      state = 'ok'
      return true
    } catch {
      return false
    } finally {
      if (probe) probing = false
    }
  }

  return {
    read: async (fn, hint) => {
      let known: string | undefined
      if (quiet && state === 'ok' && flavour !== null && reached !== null) {
        const have = reached // applied on the replica before the list below begins
        const [pos, out] = await Promise.allSettled([wanted(flavour, hint), fn(replica)])
        if (pos.status === 'fulfilled' && covers(flavour, have, pos.value)) {
          if (out.status === 'fulfilled') {
            counts.replica++
            return out.value
          }
          if (out.reason instanceof AppError) throw out.reason
          trip('down', out.reason)
        } else if (pos.status === 'fulfilled') {
          // A write came in: the list may predate it. The fence below, with this position.
          counts.discarded++
          quiet = false
          known = pos.value
        }
        if (known === undefined) {
          counts.primary++
          return await fn(primary)
        }
      }
      if (await fence(known, hint)) {
        try {
          const out = await fn(replica)
          counts.replica++
          return out
        } catch (err) {
          if (err instanceof AppError) throw err
          trip('down', err)
        }
      }
      counts.primary++
      return await fn(primary)
    },
    hint: () => published === undefined || unsupported ? null : published.get().catch(() => null),
    distrust: () => {
      trusted = false
      distrusts++
      publishing = null
    },
    afterWrite: async () => {
      if (published === undefined) return
      const f = await detect()
      if (f === null) return
      const since = distrusts
      await publish(f, await position(), since) // a query that starts after the write committed
    },
    state: () => state,
    stats: () => ({ ...counts }),
    check: async () => {
      // The same fence a read passes (no extra privilege needed on the replica), breaker or not.
      let f: Flavour | null
      let pos: string
      try {
        f = await detect()
        if (f === null) return 'unsupported'
        pos = await position()
      } catch {
        return state // the primary does not answer: its own check says so
      }
      try {
        if (!await waitFor(f, pos)) {
          trip('lagging')
          return 'lagging'
        }
      } catch (err) {
        trip('down', err)
        return 'down'
      }
      state = 'ok'
      return 'ok'
    },
  }
}
