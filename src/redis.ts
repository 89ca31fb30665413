import { Redis, type RedisOptions } from 'ioredis'

/**
 * Connections for request paths fail fast when Redis is down (no offline queue, one retry),
 * so an outage becomes a quick 503 instead of hanging requests. BullMQ workers need their own
 * blocking connection with `maxRetriesPerRequest: null`.
 */
export function createRedis (url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...overrides,
  })
}

/** Resolves when the connection is ready, or after `ms` (the process boots without Redis). */
export async function waitReady (redis: Redis, ms = 3000): Promise<boolean> {
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
export function lazySubscriber (url: string, channel: string, onMessage: (raw: string) => void, onError: (err: Error) => void): { ready: () => Promise<void>, close: () => void } {
  let sub: Redis | null = null
  let subscribed: Promise<void> | null = null
  const close = (): void => {
    sub?.disconnect()
    sub = null
  }
  const ready = async (): Promise<void> => {
    if (subscribed !== null) return await subscribed
    subscribed = (async () => {
      const conn = createRedis(url, { enableOfflineQueue: true, maxRetriesPerRequest: null })
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
 * The `maxmemory-policy` of the server (from INFO, which managed services allow where CONFIG is
 * refused), or null when it cannot be read. Anything but `noeviction` lets Redis drop BullMQ's
 * keys (queued jobs, schedules) under memory pressure.
 */
export async function maxmemoryPolicy (redis: Pick<Redis, 'info'>): Promise<string | null> {
  const info = await redis.info('memory')
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null
}

export const evictionWarning = (policy: string | null): string | null =>
  policy === null || policy === 'noeviction' ? null : `redis maxmemory-policy is ${policy}, not noeviction: queued jobs and schedules can be evicted under memory pressure`
