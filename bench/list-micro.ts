/**
 * Micro-benchmark: CPU per document listing (limit 20) in this process, split into the query
 * (mysql2 parse included), the DTO mapping and the response serialization.
 * Usage: taskset -c 0 npx tsx bench/list-micro.ts  (uses and drops quire_bench_list)
 */
import build from 'fast-json-stringify'
import { Type } from '@sinclair/typebox'
import { runMigrations } from '../drizzle/migrate.js'
import { createPool, createDb } from '../src/db.js'
import { listDocuments, toDocument } from '../src/domain/documents.js'
import { Document } from '../src/schemas/documents.js'
import { seed, dropDatabase } from './seed.js'

const url = process.env.BENCH_MICRO_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_bench_list'
await dropDatabase(url)
try {
  await runMigrations(url)
  const s = await seed(url, { users: 50, docs: 5000, bcryptCost: 4 })
  const pool = createPool(url, 10)
  const db = createDb(pool)
  const actor = { id: s.userIds[1]!, can: (p: string) => p !== 'documents:manage' }
  const stringify = build(Type.Object({ items: Type.Array(Document), nextCursor: Type.Union([Type.String(), Type.Null()]) }) as never)
  const page = await listDocuments(db, actor as never, { limit: 20, trashed: false })
  console.log('rows', page.items.length, 'bytes', stringify({ items: page.items.map(toDocument), nextCursor: page.nextCursor }).length)
  const N = 4000
  const measure = async (name: string, fn: () => Promise<unknown> | unknown): Promise<void> => {
    for (let i = 0; i < 300; i++) await fn()
    const c0 = process.cpuUsage(); const t0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: 10 }, async () => { while (next++ < N) await fn() }))
    const c = process.cpuUsage(c0)
    console.log(`${name.padEnd(28)} ${((c.user + c.system) / 1000 / N * 1000).toFixed(1)} µs CPU/op  ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} op/s`)
  }
  const dtos = page.items.map(toDocument)
  await measure('query (listDocuments)', async () => await listDocuments(db, actor as never, { limit: 20, trashed: false }))
  await measure('map toDocument', () => page.items.map(toDocument))
  await measure('serialize (fjs)', () => stringify({ items: dtos, nextCursor: page.nextCursor }))
  await measure('serialize (JSON.stringify)', () => JSON.stringify({ items: dtos, nextCursor: page.nextCursor }))
  await measure('SELECT 1', async () => await pool.query('SELECT 1'))
  await pool.end()
} finally {
  await dropDatabase(url)
}
