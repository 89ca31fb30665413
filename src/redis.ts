import { Cluster, Redis, type RedisOptions } from 'ioredis'

/** A connection to a single Redis or to a Redis Cluster: every Redis user in Quire takes either. */
export type RedisClient = Redis | Cluster

/** Where Redis is: REDIS_URL, and the seed nodes of a cluster when REDIS_CLUSTER_NODES is set. */
export interface RedisTarget { REDIS_URL: string, REDIS_CLUSTER_NODES: string }

export const isCluster = (target: RedisTarget): boolean => target.REDIS_CLUSTER_NODES.trim() !== ''

/**
 * The seed nodes of REDIS_CLUSTER_NODES (`host:port,host:port`; a few are enough, the client
 * discovers the others). User, password and TLS (`rediss:`) come from REDIS_URL.
 */
export function clusterSeeds (target: RedisTarget): Array<{ host: string, port: number }> {
  return target.REDIS_CLUSTER_NODES.split(',').map(s => s.trim()).filter(Boolean).map((hp) => {
    const i = hp.lastIndexOf(':')
    return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) }
  })
}

/**
 * BullMQ's key prefix. On a cluster it is hash-tagged (`{quire}:bull`), as BullMQ requires: its
 * scripts touch several keys of a queue at once, so they must share a slot. A single Redis keeps
 * the untagged prefix, so an upgrade finds the jobs queued before it.
 */
export const bullPrefix = (config: RedisTarget & { REDIS_PREFIX: string }): string =>
  isCluster(config) ? `{${config.REDIS_PREFIX}}:bull` : `${config.REDIS_PREFIX}:bull`

/**
 * Connections for request paths fail fast when Redis is down (no offline queue, one retry),
 * so an outage becomes a quick 503 instead of hanging requests. BullMQ workers need their own
 * blocking connection with `maxRetriesPerRequest: null`. A string is a single Redis' URL.
 */
export function createRedis (target: string | RedisTarget, overrides: RedisOptions = {}): RedisClient {
  const t = typeof target === 'string' ? { REDIS_URL: target, REDIS_CLUSTER_NODES: '' } : target
  const options: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...overrides,
  }
  if (!isCluster(t)) return new Redis(t.REDIS_URL, options)
  const url = new URL(t.REDIS_URL)
  const { enableOfflineQueue, enableAutoPipelining, lazyConnect, retryStrategy, ...nodeOptions } = options
  return closingCluster(new Cluster(clusterSeeds(t), {
    enableOfflineQueue,
    enableAutoPipelining,
    lazyConnect,
    clusterRetryStrategy: retryStrategy,
    // a master that restarts or fails over answers CLUSTERDOWN/TRYAGAIN for a moment: wait, don't fail
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...nodeOptions,
      ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  }))
}

/** The parts of ioredis' Cluster that `closingCluster` reaches (private in its typings). */
interface ClusterInternals {
  status: string
  manuallyClosing: boolean
  setStatus: (status: string) => void
  handleCloseEvent: (reason?: Error) => void
  nodes: () => unknown[]
}

/**
 * Makes a closed Cluster client always reach the status `end`, and its duplicates (BullMQ makes
 * one for a worker's blocking connection) too.
 *
 * ioredis 6's Cluster leaves `close` and `end` to its node pool: `disconnect()`/`quit()` disconnect
 * the nodes and the pool's `drain` (its last node ended) moves the client to `close`, then `end`.
 * A client closed while its pool is empty (between two attempts to reach a cluster whose nodes
 * are down, status `reconnecting`, or still resolving its seeds) has no node to end: it stays in
 * `disconnecting` for ever and never emits `end`, which BullMQ awaits (`Worker.close()` interrupts
 * the blocking connection with `disconnect()` and waits for its `end`). The close hangs, and what
 * should have been closed after it (the other clients, which retry the stopped nodes for ever)
 * keeps the process alive. Likewise a client whose pool drained after the connect attempt that
 * would have ended it stays in `close`. Here such a client ends, on the next turn of the event
 * loop (a `connect()` right after `disconnect()`, as BullMQ's cluster recovery does, wins).
 */
function closingCluster (cluster: Cluster): Cluster {
  const c = cluster as unknown as ClusterInternals
  const endIfStuck = (): void => {
    setImmediate(() => {
      if (!c.manuallyClosing) return
      // its `close` event comes back here: a connect attempt still waiting for it may end it first
      if (c.status === 'disconnecting' && c.nodes().length === 0) c.setStatus('close')
      // `close` with nobody to move it on (a connect attempt's close handler would have, at once)
      else if (c.status === 'close') c.handleCloseEvent()
    })
  }
  const { disconnect, quit, duplicate } = cluster
  cluster.disconnect = (reconnect = false): void => {
    disconnect.call(cluster, reconnect)
    if (!reconnect) endIfStuck()
  }
  cluster.quit = async (callback?: Parameters<Cluster['quit']>[0]): Promise<'OK'> => {
    const done = quit.call(cluster, callback)
    endIfStuck()
    return await done
  }
  cluster.duplicate = ((...args: Parameters<Cluster['duplicate']>) => closingCluster(duplicate.apply(cluster, args))) as Cluster['duplicate']
  cluster.on('close', () => { if (c.manuallyClosing) endIfStuck() })
  return cluster
}

/** Resolves when the connection is ready, or after `ms` (the process boots without Redis). */
export async function waitReady (redis: RedisClient, ms = 3000): Promise<boolean> {
  if (redis.status === 'ready') return true
  return await new Promise(resolve => {
    const done = (ok: boolean) => { clearTimeout(timer); redis.off('ready', onReady); resolve(ok) }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), ms)
    redis.on('ready', onReady)
  })
}

/**
 * A pub/sub subscriber on one channel, connected on first use: `ready()` resolves once subscribed
 * (a failed attempt is forgotten, so the next call tries again); `close()` disconnects.
 */
export function lazySubscriber (target: RedisTarget, channel: string, onMessage: (raw: string) => void, onError: (err: Error) => void): { ready: () => Promise<void>, close: () => void } {
  let sub: RedisClient | null = null
  let subscribed: Promise<void> | null = null
  const close = (): void => {
    sub?.disconnect()
    sub = null
  }
  const ready = async (): Promise<void> => {
    if (subscribed !== null) return await subscribed
    subscribed = (async () => {
      const conn = createRedis(target, { enableOfflineQueue: true, maxRetriesPerRequest: null })
      conn.on('error', onError)
      conn.on('message', (ch: string, raw: string) => { if (ch === channel) onMessage(raw) })
      sub = conn
      if (!await waitReady(conn)) throw new Error('redis subscriber not ready')
      await conn.subscribe(channel)
    })()
    try {
      await subscribed
    } catch (err) {
      subscribed = null
      close()
      throw err
    }
  }
  return { ready, close }
}

/**
 * The `maxmemory-policy` of the server, or of every master of a cluster (from INFO, which managed services allow where CONFIG is
 * refused), or null when it cannot be read. Anything but `noeviction` lets Redis drop BullMQ's
 * keys (queued jobs, schedules) under memory pressure.
 */
export async function maxmemoryPolicy (redis: RedisClient): Promise<string | null> {
  const nodes: Array<Pick<Redis, 'info'>> = redis instanceof Cluster ? redis.nodes('master') : [redis]
  const policies = await Promise.all(nodes.map(async n => /^maxmemory_policy:(\S+)/m.exec(await n.info('memory'))?.[1] ?? null))
  // on a cluster, the first master that may evict decides
  return policies.find(p => p !== 'noeviction') ?? policies[0] ?? null
}

export const evictionWarning = (policy: string | null): string | null =>
  policy === null || policy === 'noeviction' ? null : `redis maxmemory-policy is ${policy}, not noeviction: queued jobs and schedules can be evicted under memory pressure`
