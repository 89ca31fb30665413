/**
 * Bulk re-run by filter (issue 20): seeds N documents (default 10k) with multi-row INSERTs, then
 * POST /ingestions {filter} as an admin, and measures how long the request takes to be accepted
 * (202) and how long the batch takes to drain (every ingestion final) through one in-process
 * ingestion worker against an instant backend in a child process. Prints both, the rate, and the
 * database statements per ingestion (MySQL's Com_* counters: every statement the app sent, the
 * expansion included), the figure the drain time follows.
 * Usage: npx tsx bench/batch-drain.ts [--n 10000] [--concurrency 50] [--profile]
 * (uses and drops quire_bench_batch, or BENCH_BATCH_DATABASE_URL; with --profile writes
 * bench/out/batch-drain.cpuprofile of the drain)
 */
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { runMigrations } from '../drizzle/migrate.js'
import { loadConfig } from '../src/config.js'
import { buildApp } from '../src/build.js'
import { startWorkers } from '../src/worker-runner.js'
import { createSession } from '../src/domain/sessions.js'
import { newId } from '../src/lib/ids.js'
import { seed, dropDatabase, randomHex } from './seed.js'

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '50' }, profile: { type: 'boolean', default: false } } })
const N = Number(args.n)
const url = process.env.BENCH_BATCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_bench_batch'

// The instant backend, in its own process (its CPU is not ours): every upsert indexed, 1 chunk.
const backendSrc = "const s=require('node:http').createServer((q,r)=>{const c=[];q.on('data',d=>c.push(d));q.on('end',()=>{const b=JSON.parse(Buffer.concat(c));r.writeHead(200,{'content-type':'application/json'});r.end(JSON.stringify({status:'succeeded',result:{chunks:1,pipelineVersion:'p2',version:b.document.version}}))})});s.keepAliveTimeout=60000;s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"
const backend = spawn(process.execPath, ['-e', backendSrc], { stdio: ['ignore', 'pipe', 'inherit'] })
const port = await new Promise<string>(resolve => backend.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())))

// Com_*: the statements of those kinds the server ran (a multi-statement query counts each part).
const statements = async (conn: mysql.Connection): Promise<number> => {
  const [rows] = await conn.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_insert', 'Com_insert_select', 'Com_update', 'Com_update_multi', 'Com_delete', 'Com_set_option', 'Com_begin', 'Com_commit', 'Com_execute_sql', 'Com_stmt_execute')") as unknown as [Array<{ Value: string }>]
  return rows.reduce((n, r) => n + Number(r.Value), 0)
}
const roundTrips = async (conn: mysql.Connection): Promise<number> => {
  const [rows] = await conn.query("SHOW GLOBAL STATUS LIKE 'Questions'") as unknown as [Array<{ Value: string }>]
  return Number(rows[0]!.Value)
}

await dropDatabase(url)
try {
  await runMigrations(url)
  const s = await seed(url, { users: 1, docs: N, bcryptCost: 4 })
  const app = await buildApp(loadConfig({
    ...process.env,
    DATABASE_URL: url,
    REDIS_PREFIX: `qbb-${randomHex(4)}`,
    JWT_SECRET: randomHex(24),
    STORAGE_URL_SECRET: randomHex(24),
    INGESTION_SECRET: randomHex(16),
    INGESTION_URL: `http://127.0.0.1:${port}/ingest`,
    INGESTION_CONCURRENCY: args.concurrency,
    INGESTION_RECOVERY_INTERVAL_MS: '0',
    LOG_LEVEL: 'warn',
  }))
  await app.ready()
  const workers = await startWorkers(app, ['ingestion'])
  const adminId = newId()
  const now = new Date()
  await app.db.$client.query("INSERT INTO users (id, email, name, password_hash, role, grants, revokes, disabled, auth_version, created_at, updated_at) VALUES (?, ?, 'Bench admin', 'x', 'admin', '[]', '[]', 0, 1, ?, ?)", [adminId, `admin-${randomHex(4)}@bench.test`, now, now])
  const { accessToken } = await createSession(app, adminId, { ip: '127.0.0.1', userAgent: 'bench' })
  const headers = { authorization: `Bearer ${accessToken}` }
  // the first call of the route compiles its schemas: not measured
  await app.inject({ method: 'POST', url: '/ingestions', headers, payload: { filter: { ownerId: adminId } } })

  const conn = await mysql.createConnection({ uri: url, timezone: 'Z' })
  const session = args.profile ? new Session() : null
  if (session !== null) { session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start') }
  const stmts0 = await statements(conn)
  const trips0 = await roundTrips(conn)
  const cpu0 = process.cpuUsage()
  const t0 = Date.now()
  const res = await app.inject({ method: 'POST', url: '/ingestions', headers, payload: { filter: { ownerId: s.userIds[0], indexState: 'none' }, pipeline: 'v2' } })
  const acceptedMs = Date.now() - t0
  if (res.statusCode !== 202) throw new Error(`POST /ingestions: ${res.statusCode} ${res.body}`)
  const batchId = res.json().batchId as string
  let batch: Record<string, unknown> = {}
  for (;;) {
    batch = (await app.inject({ method: 'GET', url: `/ingestion-batches/${batchId}`, headers })).json()
    if (batch.status === 'done' && batch.queued === 0 && batch.running === 0) break
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  const drainMs = Date.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const stmts = await statements(conn) - stmts0
  const trips = await roundTrips(conn) - trips0
  if (session !== null) {
    const { profile } = await session.post('Profiler.stop')
    mkdirSync('bench/out', { recursive: true })
    writeFileSync('bench/out/batch-drain.cpuprofile', JSON.stringify(profile))
  }
  await conn.end()
  console.log(`batch of ${N}: accepted in ${acceptedMs} ms (matched ${String(res.json().matched)}), drained in ${(drainMs / 1000).toFixed(1)} s = ${Math.round(N / (drainMs / 1000))} ingestions/s`)
  console.log(`  succeeded ${String(batch.succeeded)}, failed ${String(batch.failed)}, superseded ${String(batch.superseded)}`)
  console.log(`  this process's CPU ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms per ingestion; MySQL: ${(stmts / N).toFixed(1)} statements and ${(trips / N).toFixed(1)} Questions (client statements, multi-statement parts counted) per ingestion`)
  await workers.close()
  await app.close()
} finally {
  backend.kill()
  await dropDatabase(url)
}
