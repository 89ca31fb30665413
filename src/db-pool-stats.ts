import type { Pool } from 'mysql2/promise'

export interface PoolStats {
  /** Open connections. */
  total: number
  idle: number
  busy: number
  /** Requests waiting for a connection (all busy, or one being opened for them). */
  queued: number
}

type Conn = Parameters<Parameters<Pool['pool']['getConnection']>[0]>[1]

const trackers = new WeakMap<Pool, () => PoolStats>()

/**
 * Counts a pool's connections from mysql2's public pool events (`connection`, `acquire`,
 * `release`) and its `getConnection`, instead of reading its private arrays. Start it before the
 * pool's first query (plugin registration); a connection opened earlier is counted from its first
 * use. Returns the reader; tracking the same pool twice returns the same one.
 */
export function poolStats (pool: Pool): () => PoolStats {
  const known = trackers.get(pool)
  if (known !== undefined) return known
  const core = pool.pool
  const open = new Set<Conn>()
  const busy = new Set<Conn>()
  let waiting = 0
  const see = (c: Conn): void => {
    if (open.has(c)) return
    open.add(c)
    // Ended by the server, an error or the idle timeout: gone from the pool.
    const gone = (): void => { open.delete(c); busy.delete(c) }
    c.once('end', gone)
    c.once('error', gone)
  }
  core.on('connection', see)
  core.on('acquire', (c: Conn) => { see(c); busy.add(c) })
  core.on('release', (c: Conn) => { busy.delete(c) })
  // Every acquisition (pool.query and pool.execute included) goes through getConnection; a
  // connection handed straight from a release to a waiting request stays busy (no events then).
  const getConnection = core.getConnection.bind(core)
  core.getConnection = (cb) => {
    waiting++
    getConnection((err, conn) => {
      waiting--
      cb(err, conn)
    })
  }
  const read = (): PoolStats => ({ total: open.size, idle: open.size - busy.size, busy: busy.size, queued: waiting })
  trackers.set(pool, read)
  return read
}
