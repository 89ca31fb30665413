/**
 * Micro-benchmark: CPU per document listing (limit 20) in this process, on the primary directly
 * against through the read router (src/db/replica.ts) with a caught-up replica, without HTTP and
 * without a published position: the cost of the router's fallback, which asks the primary for its
 * GTID position (one query shared by the lists that arrive while one is in flight). The HTTP
 * scenario (bench/scenarios/read-replica.ts) measures the published path.
 * Usage: taskset -c 0 npx tsx bench/replica-micro.ts  (starts and removes its own MariaDB pair on 7365/7366)
 */
import { runMigrations } from '../drizzle/migrate.js'
import { createPool, createDb } from '../src/db.js'
import { listDocuments } from '../src/domain/documents.js'
import { replicaRouter } from '../src/db/replica.js'
import { startReplication } from '../scripts/mariadb-replica.js'
import { seed } from './seed.js'

const rep = await startReplication({ primaryPort: 7365, replicaPort: 7366, database: 'quire_bench_micro' })
try {
  await runMigrations(rep.primaryUrl)
  const s = await seed(rep.primaryUrl, { users: 50, docs: 5000, bcryptCost: 4 })
  await rep.caughtUp(300_000)
  const [pp, rp] = [createPool(rep.primaryUrl, 10), createPool(rep.replicaUrl, 10)]
  const primary = createDb(pp)
  const log = { warn: (o: object, m: string) => console.warn(m, o), error: (o: object, m: string) => console.error(m, o) }
  const router = replicaRouter(primary, createDb(rp), { maxWaitMs: 250, retryMs: 1000, log })
  const actor = { id: s.userIds[1]!, can: (p: string) => p !== 'documents:manage' }
  const list = async (db: typeof primary): Promise<unknown> => await listDocuments(db, actor as never, { limit: 20, trashed: false })
  const N = Number(process.env.N ?? 4000)
  const CONC = Number(process.env.CONC ?? 16)
  const measure = async (name: string, fn: () => Promise<unknown>): Promise<number> => {
    for (let i = 0; i < 300; i++) await fn()
    const c0 = process.cpuUsage(); const t0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: CONC }, async () => { while (next++ < N) await fn() }))
    const c = process.cpuUsage(c0)
    const us = (c.user + c.system) / N
    console.log(`${name.padEnd(34)} ${us.toFixed(1)} µs CPU/op  ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} op/s`)
    return us
  }
  const rounds: Array<[number, number]> = []
  for (let r = 0; r < 3; r++) {
    const direct = await measure('listDocuments on the primary', async () => await list(primary))
    const routed = await measure('listDocuments through the router', async () => await router.read(list))
    rounds.push([direct, routed])
  }
  const ratios = rounds.map(([d, r]) => r / d).sort((a, b) => a - b)
  console.log(`CPU per list, routed ÷ direct: median ${ratios[1]!.toFixed(3)} (${ratios[0]!.toFixed(3)}–${ratios[2]!.toFixed(3)}); served ${JSON.stringify(router.stats())}`)
  await Promise.all([pp.end(), rp.end()])
} finally {
  await rep.stop()
}
