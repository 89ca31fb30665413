import type { RedisClient } from '../redis.js'
import { rank, type Flavour } from './gtid.js'

/**
 * The primary's position as the writers publish it (src/db/replica.ts): after every write, and
 * before its answer goes out, a process reads the primary's GTID position and stores it here, so a
 * list on any process can tell what the replica must have applied with one Redis GET (which leaves
 * with the request's first Redis round trip) rather than a query to the primary.
 */
export interface PublishedPosition {
  /** The newest position published, or null when there is none (never published, or Redis lost it). */
  get: () => Promise<string | null>
  /** Keeps `pos` unless a newer position is there already. */
  set: (flavour: Flavour, pos: string) => Promise<void>
}

// `rank|position`; the newer (higher rank) of the two stays. The TTL bounds how long a position a
// primary will not reach again (a restore from a backup) can make lists wait for the replica. A
// position that cannot be ranked (-1) removes the published one, which may be older than it: lists
// then ask the primary.
const SET_NEWER = `if tonumber(ARGV[1]) < 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local r = tonumber(string.match(cur, '^(-?%d+)|'))
  if r ~= nil and r >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1`

export function redisPosition (redis: RedisClient, key: string, ttlSeconds = 3600): PublishedPosition {
  return {
    get: async () => {
      const v = await redis.get(key)
      if (v === null) return null
      const bar = v.indexOf('|')
      return bar < 0 ? null : v.slice(bar + 1)
    },
    set: async (flavour, pos) => {
      await redis.eval(SET_NEWER, 1, key, String(rank(flavour, pos)), pos, String(ttlSeconds))
    },
  }
}

/**
 * Processes that read a replica say so in Redis (`key`, holding when the first of them did, ms):
 * a process without DATABASE_REPLICA_URL that sees it publishes after its writes too, so that
 * their lists have them; the readers trust published positions only once every process had
 * time to see it (`READERS_TRUST_AFTER_MS`, three of the others' checks).
 */
export const READERS_CHECK_MS = 10_000
export const READERS_TRUST_AFTER_MS = 3 * READERS_CHECK_MS
const READERS_TTL_S = 120

/** A reader's announcement (at start and every READERS_CHECK_MS): since when the deployment has readers. */
export async function announceReader (redis: RedisClient, key: string, now = Date.now()): Promise<number> {
  await redis.set(key, String(now), 'EX', READERS_TTL_S, 'NX')
  const since = Number(await redis.get(key))
  await redis.expire(key, READERS_TTL_S)
  return Number.isFinite(since) && since > 0 ? since : now
}

/** Whether some process of the deployment reads a replica. */
export async function readersExist (redis: RedisClient, key: string): Promise<boolean> {
  return await redis.exists(key) === 1
}
