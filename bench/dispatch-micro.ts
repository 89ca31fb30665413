/**
 * Micro-benchmark behind bench/ANALYSIS.md: the dispatch job's own CPU per ingestion, without
 * BullMQ. Builds the worker app in this process, writes queued ingestion rows, and calls the real
 * job's `process` directly (20 at a time, like INGESTION_CONCURRENCY) against an instant backend
 * in a child process; prints this process's CPU per ingestion, and with --profile writes a
 * .cpuprofile of the measured window (bench/out/dispatch-micro.cpuprofile).
 * Usage: taskset -c 0 npx tsx bench/dispatch-micro.ts [--profile]  (uses and drops quire_bench_dispatch)
 */
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import type { Job } from 'bullmq'
import { runMigrations } from '../drizzle/migrate.js'
import { loadConfig } from '../src/config.js'
import { buildWorkerApp } from '../src/build.js'
import dispatch from '../src/jobs/ingestion-dispatch.js'
import { newId } from '../src/lib/ids.js'
import { seed, dropDatabase, randomHex } from './seed.js'

const url = process.env.BENCH_MICRO_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_bench_dispatch'
const N = 3000
const CONCURRENCY = 20

// The instant backend, in its own process (its CPU is not ours).
const backendSrc = "const s=require('node:http').createServer((q,r)=>{q.resume();q.on('end',()=>{r.writeHead(200,{'content-type':'application/json'});r.end('{\"status\":\"succeeded\",\"result\":{\"bench\":true}}')})});s.keepAliveTimeout=60000;s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"
const backend = spawn('taskset', ['-c', '1', process.execPath, '-e', backendSrc], { stdio: ['ignore', 'pipe', 'inherit'] })
const port = await new Promise<string>(resolve => backend.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())))

await dropDatabase(url)
try {
  await runMigrations(url)
  const s = await seed(url, { users: 10, docs: 1000, bcryptCost: 4 })
  const app = await buildWorkerApp(loadConfig({
    ...process.env,
    DATABASE_URL: url,
    REDIS_PREFIX: `qdm-${randomHex(4)}`,
    JWT_SECRET: randomHex(24),
    STORAGE_URL_SECRET: randomHex(24),
    INGESTION_SECRET: randomHex(16),
    INGESTION_URL: `http://127.0.0.1:${port}/ingest`,
    LOG_LEVEL: 'warn',
  }))
  await app.ready()
  const pool = app.db.$client
  const rows = async (n: number): Promise<string[]> => {
    const ids = Array.from({ length: n }, () => newId())
    const now = new Date()
    await pool.query('INSERT INTO ingestions (id, document_id, status, pipeline, options, attempts, requested_by, request_id, created_at, updated_at, enqueued_at) VALUES ?',
      [ids.map((id, i) => [id, s.ownDocIds[i % s.ownDocIds.length], 'queued', 'default', '{}', 0, s.userIds[0], 'bench', now, now, now])])
    return ids
  }
  const run = async (ids: string[]): Promise<void> => {
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!
        const job = { id, data: { ingestionId: id, requestId: 'bench' }, opts: { attempts: 5 }, attemptsMade: 0 } as unknown as Job<{ ingestionId: string, requestId: string }>
        const out = await dispatch.process(app, job) as { status?: string }
        if (out.status !== 'succeeded') throw new Error(`ingestion ${id}: ${JSON.stringify(out)}`)
      }
    }))
  }
  {
    // the first 1000 of a fresh process, JIT warm-up included: what a short drain by a new worker pays
    const ids = await rows(1000)
    const c0 = process.cpuUsage()
    await run(ids)
    const c = process.cpuUsage(c0)
    console.log(`first 1000 (cold): ${((c.user + c.system) / 1000 / 1000).toFixed(3)} CPU ms/ingestion`)
  }
  const profile = process.argv.includes('--profile')
  for (let rep = 0; rep < 3; rep++) {
    const ids = await rows(N)
    let session: Session | null = null
    if (profile && rep === 2) {
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: 100 })
      await session.post('Profiler.start')
    }
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await run(ids)
    const c = process.cpuUsage(c0)
    const ms = performance.now() - t0
    if (session !== null) {
      const { profile: p } = await session.post('Profiler.stop')
      session.disconnect()
      mkdirSync('bench/out', { recursive: true })
      writeFileSync('bench/out/dispatch-micro.cpuprofile', JSON.stringify(p))
    }
    console.log(`dispatch job alone: ${(N / ms * 1000).toFixed(0)}/s, ${((c.user + c.system) / 1000 / N).toFixed(3)} CPU ms/ingestion (user ${(c.user / 1000 / N).toFixed(3)}, system ${(c.system / 1000 / N).toFixed(3)})`)
  }
  await app.close()
} finally {
  backend.kill()
  await dropDatabase(url)
}
