/**
 * Micro-benchmark: CPU per document listing (limit 20) in this process: the query with its rows
 * as JSON text from MySQL (what GET /documents runs), the page joined as the route sends it, and
 * `SELECT 1` for the round trip alone.
 * Usage: taskset -c 0 npx tsx bench/list-micro.ts  (uses and drops quire_bench_list)
 */
import { runMigrations } from '../drizzle/migrate.js'
import { createPool, createDb } from '../src/db.js'
import { listDocuments } from '../src/domain/documents.js'
import { seed, dropDatabase } from './seed.js'

const url = process.env.BENCH_MICRO_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_bench_list'
await dropDatabase(url)
try {
  await runMigrations(url)
  const s = await seed(url, { users: 50, docs: 5000, bcryptCost: 4 })
  const pool = createPool(url, 10)
  const db = createDb(pool)
  const actor = { id: s.userIds[1]!, can: (p: string) => p !== 'documents:manage' }
  const body = (p: { items: string[], nextCursor: string | null }): string => `{"items":[${p.items.join(',')}],"nextCursor":${JSON.stringify(p.nextCursor)}}`
  const page = await listDocuments(db, actor as never, { limit: 20, trashed: false })
  console.log('rows', page.items.length, 'bytes', body(page).length)
  const N = 4000
  const measure = async (name: string, fn: () => Promise<unknown> | unknown): Promise<void> => {
    for (let i = 0; i < 300; i++) await fn()
    const c0 = process.cpuUsage(); const t0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: 10 }, async () => { while (next++ < N) await fn() }))
    const c = process.cpuUsage(c0)
    console.log(`${name.padEnd(28)} ${((c.user + c.system) / 1000 / N * 1000).toFixed(1)} µs CPU/op  ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} op/s`)
  }
  await measure('query (listDocuments)', async () => await listDocuments(db, actor as never, { limit: 20, trashed: false }))
  await measure('query + page body', async () => body(await listDocuments(db, actor as never, { limit: 20, trashed: false })))
  await measure('SELECT 1', async () => await pool.query('SELECT 1'))
  await pool.end()
} finally {
  await dropDatabase(url)
}
