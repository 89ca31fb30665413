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
