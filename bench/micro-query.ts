/**
 * Micro-benchmark behind bench/ANALYSIS.md: CPU per primary-key read through the drizzle query
 * builder, a prepared drizzle query, raw mysql2 and `SELECT 1`, in this process, 10 concurrent.
 * Usage: taskset -c 0 npx tsx bench/micro-query.ts  (uses and drops quire_bench_micro)
 */
import { eq, sql } from 'drizzle-orm'
import { runMigrations } from '../drizzle/migrate.js'
import { createPool, createDb } from '../src/db.js'
import { documents } from '../drizzle/schema/index.js'
import { seed, dropDatabase } from './seed.js'

const url = process.env.BENCH_MICRO_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_bench_micro'
await dropDatabase(url)
try {
  await runMigrations(url)
  const s = await seed(url, { users: 10, docs: 1000, bcryptCost: 4 })
  const id = s.ownDocIds[5]!
  for (const trace of (process.env.BENCH_TRACE_ORDER === 'off-first' ? [false, true] : [true, false])) {
    const pool = createPool(url, 10)
    ;(pool as unknown as { pool: { config: { connectionConfig: { trace: boolean } } } }).pool.config.connectionConfig.trace = trace
    const db = createDb(pool)
    const prep = db.select().from(documents).where(eq(documents.id, sql.placeholder('id'))).limit(1).prepare()
    const variants: Record<string, () => Promise<unknown>> = {
      drizzle: async () => await db.select().from(documents).where(eq(documents.id, id)).limit(1),
      prepared: async () => await prep.execute({ id }),
      raw: async () => await pool.query('SELECT * FROM documents WHERE id = ? LIMIT 1', [id]),
      select1: async () => await pool.query('SELECT 1'),
    }
    for (const [name, fn] of Object.entries(variants)) {
      for (let i = 0; i < 300; i++) await fn()
      const N = 3000
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      await Promise.all(Array.from({ length: 10 }, async () => { for (let i = 0; i < N / 10; i++) await fn() }))
      const c = process.cpuUsage(c0)
      const t = performance.now() - t0
      console.log(`mysql2 trace=${String(trace)} ${name}: ${(N / t * 1000).toFixed(0)}/s, ${((c.user + c.system) / 1000 / N).toFixed(3)} CPU ms/query`)
    }
    await pool.end()
  }
} finally {
  await dropDatabase(url)
}
