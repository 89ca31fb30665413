/**
 * The list reads with a read replica (DATABASE_REPLICA_URL) against the same reads without one
 * (issue 25: ≤ 5% overhead). Its own MariaDB primary and replica (scripts/mariadb-replica.ts, GTID
 * replication, ports 7360/7361) carry a smaller seed than the main scenarios; two API servers on the
 * same primary, one of them with the replica, are alternated within each round. Both databases are
 * on this box, so the figure is the cost of the routing (the published GTID position fetched with
 * the request's Redis round trip, the replica's wait when it has not reached it yet, the fallback
 * bookkeeping), not a gain from a second machine.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { runMigrations } from '../../drizzle/migrate.js'
import { READERS_TRUST_AFTER_MS } from '../../src/db/replica-fence.js'
import { startReplication } from '../../scripts/mariadb-replica.js'
import { fmt, onCleanup, type LoadTarget } from '../lib.js'
import { seed } from '../seed.js'
import { alternate, cpuRatio, log, ratioOf, rowFor, sections, startServer, table, targetLine, tokenFor, type BaseCtx, type Scenario } from '../runner/harness.js'
import { CONNECTIONS, QUICK, ROUNDS, SECONDS } from '../runner/options.js'

const MIN = 0.95
const PATHS = [['GET /documents?limit=20', '/documents?limit=20'], ['GET /ingestions?limit=20', '/ingestions?limit=20']] as const

async function run (_ctx: BaseCtx): Promise<void> {
  const rep = await startReplication({ primaryPort: 7360, replicaPort: 7361, database: 'quire_bench_replica' })
  onCleanup('stop the replication pair', async () => { await rep.stop() })
  await runMigrations(rep.primaryUrl)
  const docs = QUICK ? 5000 : 20_000
  const seeded = await seed(rep.primaryUrl, { users: 200, docs, bcryptCost: 4 })
  await rep.caughtUp(600_000)
  const plain = await startServer({ DATABASE_URL: rep.primaryUrl, STORAGE_DRIVER: 'local' })
  const routed = await startServer({ DATABASE_URL: rep.primaryUrl, DATABASE_REPLICA_URL: rep.replicaUrl, STORAGE_DRIVER: 'local' })
  // A new deployment's lists trust published positions once its replica readers are
  // READERS_TRUST_AFTER_MS old (every process had time to learn it): the steady state is measured.
  await sleep(READERS_TRUST_AFTER_MS + 1000)
  const auth = { authorization: `Bearer ${await tokenFor(plain, seeded.userIds[0]!)}` }
  const targets: LoadTarget[] = PATHS.flatMap(([name, path]) => [
    { name: `${name} (primary only)`, base: plain.base, pid: plain.pid, path, headers: auth },
    { name: `${name} (with the replica)`, base: routed.base, pid: routed.pid, path, headers: auth },
  ])
  for (const t of targets) {
    const res = await fetch(`${t.base!}${String(t.path)}`, { headers: auth })
    if (res.status !== 200) throw new Error(`${t.name}: ${res.status} ${await res.text()}`)
  }
  // A 5% threshold needs more rounds than the default: one round's ratio varies by ±10% here.
  const rounds = QUICK ? ROUNDS : Math.max(ROUNDS, 10)
  log(`read-replica: ${targets.length} targets, ${rounds} rounds x ${SECONDS}s (every other round in reverse order), ${CONNECTIONS} connections`)
  const res = await alternate(plain.base, targets, { rounds, seconds: SECONDS, connections: CONNECTIONS, pid: plain.pid, reverseOddRounds: true })
  // Which side served the routed server's lists (its /metrics): the replica, or the fallback.
  const metrics = await (await fetch(`${routed.base}/metrics`)).text()
  const served = (target: string): string => [...metrics.matchAll(/quire_db_list_reads_total\{target="(\w+)"\} (\d+)/g)].find(m => m[1] === target)?.[2] ?? '?'
  const source = (name: string): string => [...metrics.matchAll(/quire_db_replica_positions_total\{source="(\w+)"\} (\d+)/g)].find(m => m[1] === name)?.[2] ?? '?'
  const rows = targets.map(t => rowFor(t.name, res.get(t.name)!))
  sections.push(`### List reads with a read replica\n\nTwo API servers on one MariaDB primary (${seeded.documents} documents, ${seeded.userIds.length} users), one of them with DATABASE_REPLICA_URL on a GTID replica (both databases local: the difference is the routing's cost), alternated within each round (every other round in reverse order); the client is an editor. ${CONNECTIONS} connections, ${rounds} rounds of ${SECONDS} s. The routed server's lists were served by the replica ${served('replica')} times, by the primary ${served('primary')} times; the position they waited for was the published one ${source('published')} times, asked of the primary ${source('primary')} times (nothing is written during the run, so the published position stays the same). MySQL CPU is the shared server's (not these two), so read it as noise.\n\n${table(rows)}`)
  for (const [name] of PATHS) {
    const base = res.get(`${name} (primary only)`)!
    const subj = res.get(`${name} (with the replica)`)!
    const ratio = ratioOf(subj.map(r => r.rps), base.map(r => r.rps))
    const cost = cpuRatio(subj, base)
    const [b, s] = [rowFor('b', base), rowFor('s', subj)]
    targetLine({ scenario: `${name} with a read replica (routing overhead ≤ 5%)`, subject: `${name} (with the replica)`, baseline: `${name} (primary only)`, target: `≥ ${MIN.toFixed(2)}`, ratio, note: `${fmt(s.rps.median)} vs ${fmt(b.rps.median)} req/s; API server CPU per request ${fmt(s.cpuMs, 3)} vs ${fmt(b.cpuMs, 3)} ms (CPU-cost ratio ${fmt(cost.median, 2)}); p50 ${fmt(s.p50, 1)} vs ${fmt(b.p50, 1)} ms, p99 ${fmt(s.p99, 1)} vs ${fmt(b.p99, 1)} ms; replica served ${served('replica')}, primary ${served('primary')}`, min: MIN }, ratio.median)
  }
  await Promise.all([plain.stop(), routed.stop()])
}

export const readReplica: Scenario = { name: 'read-replica', server: 'own', run }
