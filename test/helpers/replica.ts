import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { runMigrations } from '../../drizzle/migrate.js'
import { startReplication, type LocalReplication } from '../../scripts/mariadb-replica.js'
import { build, longStandingReplicaReaders, testPrefix, type Teardownable } from '../helper.js'

/**
 * A deployment on a read replica of its own (scripts/mariadb-replica.ts: a MariaDB primary and GTID
 * replica on the given loopback ports, stopped at the end): two API processes sharing it, one Redis
 * prefix (their auth state and its invalidations, as deployed ones share them) and replica readers
 * a minute old (lists trust published positions at once). Short waits, so a lag shows quickly, and
 * every readiness probe checks afresh (HEALTH_READY_CACHE_MS 0), so each one sees the replica's state now.
 */
export async function replicaDeployment (t: Teardownable, opts: { primaryPort: number, replicaPort: number, tag: string }) {
  const rep: LocalReplication = await startReplication({ primaryPort: opts.primaryPort, replicaPort: opts.replicaPort })
  t.teardown(async () => await rep.stop())
  await runMigrations(rep.primaryUrl)
  await rep.caughtUp()
  const overrides = { REDIS_PREFIX: testPrefix(opts.tag), DATABASE_URL: rep.primaryUrl, DATABASE_REPLICA_URL: rep.replicaUrl, DATABASE_REPLICA_MAX_WAIT_MS: 300, DATABASE_REPLICA_RETRY_MS: 200, HEALTH_READY_CACHE_MS: 0 }
  await longStandingReplicaReaders(overrides.REDIS_PREFIX)
  const a: FastifyInstance = await build(t, overrides)
  const b: FastifyInstance = await build(t, overrides)
  return { rep, overrides, a, b }
}

/** Polls `fn` until true (generous bound: the machine may be loaded). */
export async function eventually (what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await sleep(100)
  }
  throw new Error(`timed out: ${what}`)
}
