import type { Db } from '../db.js'
import { joinNext } from '../lib/join-next.js'
import type { Flavour } from './gtid.js'
import type { PublishedPosition } from './replica-fence.js'

/**
 * Where the list and search reads run (`fastify.reads`): the primary only (`primaryOnly`, here),
 * or a read replica behind a GTID fence (`replicaRouter`, src/db/replica.ts).
 */
export type ReplicaState = 'ok' | 'lagging' | 'down' | 'unsupported'

export interface ReadRouter {
  /**
   * Runs `fn` on the replica when it is fresh enough, else (or when it fails there) on the
   * primary. `hint`: the request's `hint()`, started when the request arrived.
   */
  read: <T>(fn: (db: Db) => Promise<T>, hint?: Promise<string | null> | null) => Promise<T>
  /** The published position, fetched now (null without a replica or a published position). */
  hint: () => Promise<string | null> | null
  /** After a write committed, before its answer: publishes the primary's position for the reads (with a replica). */
  afterWrite: () => Promise<void>
  /**
   * Redis (re)connected, or a cluster node changed: what it holds may be older than what was
   * published (a failover, a restart from a snapshot). Reads ask the primary until this process
   * has published a position of its own again.
   */
  distrust: () => void
  /** null without a replica. */
  state: () => ReplicaState | null
  /**
   * Reads served by each side since start; lists run ahead of the fence and thrown away; the
   * primary's position asked (queries) and taken from the published one instead.
   */
  stats: () => { replica: number, primary: number, discarded: number, positions: number, published: number }
  /** Health: the replica answers and is not lagging (or null without a replica). */
  check: () => Promise<ReplicaState | null>
}

/**
 * Without a replica every read is the primary's. `publisher`: when other processes of the
 * deployment read a replica (`elsewhere()`), writes publish the primary's position for them.
 */
export function primaryOnly (primary: Db, publisher?: { published: PublishedPosition, elsewhere: () => boolean }): ReadRouter {
  let n = 0
  let flavour: Flavour | null = null
  const position = joinNext(async () => String(await scalar(primary, POSITION[flavour ?? 'mariadb']) ?? ''))
  return {
    read: async (fn) => { n++; return await fn(primary) },
    hint: () => null,
    afterWrite: async () => {
      if (publisher === undefined || !publisher.elsewhere()) return
      flavour ??= /mariadb/i.test(String(await scalar(primary, 'SELECT VERSION()'))) ? 'mariadb' : 'mysql'
      await publisher.published.set(flavour, await position())
    },
    distrust: () => {},
    state: () => null,
    stats: () => ({ replica: 0, primary: n, discarded: 0, positions: 0, published: 0 }),
    check: async () => null,
  }
}

export const POSITION: Record<Flavour, string> = { mariadb: 'SELECT @@GLOBAL.gtid_binlog_pos AS p', mysql: 'SELECT @@GLOBAL.gtid_executed AS p' }
/** 0 when reached; MariaDB answers -1 on timeout, MySQL 1. */
export const WAIT: Record<Flavour, string> = { mariadb: 'SELECT MASTER_GTID_WAIT(?, ?) AS r', mysql: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r' }

export async function scalar (db: Db, sql: string, params: unknown[] = []): Promise<unknown> {
  const [rows] = await db.$client.query(sql, params) as unknown as [Array<Record<string, unknown>>]
  return Object.values(rows[0] ?? {})[0]
}
