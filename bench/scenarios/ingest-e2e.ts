/** End-to-end dispatch: a worker process drains triggered ingestions against the instant backend; the BullMQ floors. */
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { JOB_RETENTION } from '../../src/jobs/types.js'
import { randomHex } from '../seed.js'
import { fmt, load, machineBusy, pidOf, procCpu, sleep, startChild, summarize } from '../lib.js'
import { ingestPath, log, probe, sections, serverEnv, targetLine, type Ctx, type Scenario } from '../runner/harness.js'
import {
  argv, CLIENT_CPU, CONNECTIONS, DATABASE_URL, E2E_INGESTIONS, here, ingestionSecret, jwtSecret, MYSQLD_PID, OUT_DIR, QUICK, REDIS_PREFIX, REDIS_URL, SERVER_CPU, WORKER_FLAGS, cpuCount,
} from '../runner/options.js'

async function run (ctx: Ctx): Promise<void> {
  const { server, seeded, token, backend } = ctx
  const headers = { authorization: `Bearer ${token}` }
  const p = await probe(`${server.base}/documents/${seeded.ownDocIds[0]!}/ingestions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' }, 202)
  if (!p.ok) { targetLine({ scenario: 'end-to-end ingestion dispatch', subject: 'worker', baseline: '-', target: '≥ 500/s', note: p.why, min: 500 }, NaN); return }
  const conn = await mysql.createConnection({ uri: DATABASE_URL, timezone: 'Z' })
  const queue = new Queue('ingestion', { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: `${REDIS_PREFIX}:bull` })
  const floorQueue = new Queue('bench-floor', { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: `${REDIS_PREFIX}:bull` })
  interface Drain { rate: number, dbRate: number, cpuMs: number, cpuPct: number, mysql: number, redis: number, runner: number, machine: number }
  const cold: Drain[] = []
  const warm: Drain[] = []
  const floors: Array<{ kind: string, cold: { rate: number, cpuMs: number }, warm: { rate: number, cpuMs: number } }> = []
  const notes: string[] = []
  // The whole box's CPU per ingestion, by process: the worker is one of several on two cores.
  const redisPid = pidOf('redis-server')
  // Round 1 is the worker's first E2E_INGESTIONS after its start (cold: the JIT still compiling);
  // the rounds after it, with the same process, are the steady state a long-running worker has.
  const rounds = QUICK ? 2 : 3
  try {
    // A clean backlog: earlier scenarios' jobs gone, their rows final.
    await queue.obliterate({ force: true })
    await conn.query("UPDATE ingestions SET status = 'cancelled' WHERE status IN ('queued', 'running')")
    const worker = await startChild('worker', join(here, 'worker.ts'), {
      cpus: SERVER_CPU,
      env: serverEnv({ JWT_SECRET: jwtSecret, INGESTION_SECRET: ingestionSecret, INGESTION_URL: backend.url }),
      nodeArgs: [...WORKER_FLAGS, ...(argv.profile === true ? ['--cpu-prof', `--cpu-prof-dir=${join(OUT_DIR, 'worker')}`] : [])],
    })
    for (let r = 0; r < rounds; r++) {
      // The backlog is written with the queue paused (the worker idle), then released at once.
      await queue.pause()
      const made = await load(server.base, { name: 'trigger', method: 'POST', path: ingestPath(seeded.ownDocIds), headers, body: '{}' }, { amount: E2E_INGESTIONS, connections: CONNECTIONS })
      const [[{ n: queued }]] = await conn.query("SELECT COUNT(*) AS n FROM ingestions WHERE status = 'queued'") as unknown as [[{ n: number }]]
      const before = backend.count()
      const cpu0 = procCpu(worker.pid)
      const other0 = { mysql: MYSQLD_PID !== null ? procCpu(MYSQLD_PID) : NaN, redis: redisPid !== null ? procCpu(redisPid) : NaN, runner: process.cpuUsage(), machine: machineBusy() }
      const t0 = process.hrtime.bigint()
      await queue.resume()
      let left = Number(queued)
      const deadline = Date.now() + 120_000
      while (left > 0 && Date.now() < deadline && worker.proc.exitCode === null) {
        await sleep(25)
        const [[{ n }]] = await conn.query("SELECT COUNT(*) AS n FROM ingestions WHERE status IN ('queued', 'running')") as unknown as [[{ n: number }]]
        left = Number(n)
      }
      if (worker.proc.exitCode !== null) throw new Error(`the worker exited (${worker.proc.exitCode}) during round ${r + 1}`)
      const secs = Number(process.hrtime.bigint() - t0) / 1e9
      const workerCpu = procCpu(worker.pid) - cpu0
      const runnerUs = process.cpuUsage(other0.runner)
      const other = { mysql: (MYSQLD_PID !== null ? procCpu(MYSQLD_PID) : NaN) - other0.mysql, redis: (redisPid !== null ? procCpu(redisPid) : NaN) - other0.redis, runner: (runnerUs.user + runnerUs.system) / 1e6, machine: machineBusy() - other0.machine }
      const [[agg]] = await conn.query("SELECT SUM(status = 'succeeded') AS ok, SUM(status = 'failed') AS failed, TIMESTAMPDIFF(MICROSECOND, MIN(started_at), MAX(finished_at)) AS us FROM ingestions WHERE started_at IS NOT NULL AND finished_at >= NOW(3) - INTERVAL 5 MINUTE") as unknown as [[{ ok: number, failed: number, us: number }]]
      const done = Number(queued) - left
      const per = (x: number): number => 1000 * x / Math.max(1, done)
      const d: Drain = { rate: done / secs, dbRate: Number(agg.ok) / (Number(agg.us) / 1e6), cpuMs: per(workerCpu), cpuPct: 100 * workerCpu / secs, mysql: per(other.mysql), redis: per(other.redis), runner: per(other.runner), machine: per(other.machine) }
      ;(r === 0 ? cold : warm).push(d)
      log(`  round ${r + 1}/${rounds}${r === 0 ? ' (cold worker)' : ''}: ${made.total} triggered (${fmt(made.rps)}/s), ${queued} queued, drained in ${fmt(secs, 2)} s = ${fmt(d.rate)}/s (worker CPU ${fmt(d.cpuPct)}%, ${fmt(d.cpuMs, 2)} ms/ingestion); backend saw ${backend.count() - before}; succeeded ${agg.ok}, failed ${agg.failed}${left > 0 ? `, ${left} left at the deadline` : ''}`)
      if (Number(agg.failed) > 0) notes.push(`round ${r + 1}: ${agg.failed} failed`)
      await conn.query('UPDATE ingestions SET finished_at = finished_at - INTERVAL 1 HOUR WHERE finished_at IS NOT NULL')
    }
    await worker.stop()
    // The floors: a BullMQ worker with the real one's options on its own queue, doing nothing,
    // then only the POST to the same instant backend (bench/worker.ts). Same job count and core,
    // a cold round then a warm one.
    for (const kind of ['noop', 'post'] as const) {
      await floorQueue.obliterate({ force: true })
      const fw = await startChild(`floor worker (${kind})`, join(here, 'worker.ts'), {
        cpus: SERVER_CPU,
        env: serverEnv({ JWT_SECRET: jwtSecret, INGESTION_SECRET: ingestionSecret, INGESTION_URL: backend.url, BENCH_WORKER_FLOOR: kind }),
        nodeArgs: WORKER_FLAGS,
      })
      const out: Array<{ rate: number, cpuMs: number }> = []
      for (let r = 0; r < 2; r++) {
        await floorQueue.pause()
        for (let i = 0; i < E2E_INGESTIONS; i += 500) {
          await floorQueue.addBulk(Array.from({ length: Math.min(500, E2E_INGESTIONS - i) }, () => ({ name: 'ingestion-dispatch', data: { ingestionId: randomHex(13), requestId: randomHex(8) }, opts: { ...JOB_RETENTION, attempts: 5, backoff: { type: 'exponential', delay: 2000, jitter: 0.5 } } })))
        }
        const before = backend.count()
        const cpu0 = procCpu(fw.pid)
        const t0 = process.hrtime.bigint()
        await floorQueue.resume()
        const deadline = Date.now() + 120_000
        let left = E2E_INGESTIONS
        // polled often: a warm no-op drain takes a fraction of a second
        while (left > 0 && Date.now() < deadline && fw.proc.exitCode === null) {
          await sleep(5)
          const c = await floorQueue.getJobCounts('wait', 'active', 'delayed', 'prioritized')
          left = Object.values(c).reduce((a, b) => a + b, 0)
        }
        const secs = Number(process.hrtime.bigint() - t0) / 1e9
        const cpu = procCpu(fw.pid) - cpu0
        if (fw.proc.exitCode !== null) throw new Error(`the floor worker (${kind}) exited (${fw.proc.exitCode})`)
        const { failed } = await floorQueue.getJobCounts('failed')
        if ((failed ?? 0) > 0) notes.push(`floor (${kind}): ${failed} jobs failed`)
        await floorQueue.clean(0, 0, 'failed')
        const done = E2E_INGESTIONS - left - (failed ?? 0)
        out.push({ rate: done / secs, cpuMs: 1000 * cpu / Math.max(1, done) })
        log(`  floor (${kind === 'noop' ? 'BullMQ, no-op processor' : 'BullMQ + POST to the backend'}, ${r === 0 ? 'cold' : 'warm'}): ${E2E_INGESTIONS} jobs drained in ${fmt(secs, 2)} s = ${fmt(done / secs)}/s (worker CPU ${fmt(100 * cpu / secs)}%, ${fmt(out.at(-1)!.cpuMs, 2)} ms/job)${kind === 'post' ? `; backend saw ${backend.count() - before}` : ''}${left > 0 ? `, ${left} left at the deadline` : ''}`)
      }
      await fw.stop()
      floors.push({ kind, cold: out[0]!, warm: out[1]! })
    }
    await floorQueue.obliterate({ force: true })
  } finally {
    await queue.close()
    await floorQueue.close()
    await conn.end()
  }
  const col = (k: keyof Drain, digits = 2): string => { const x = summarize(warm.map(d => d[k])); return `${fmt(x.median, digits)} | ${fmt(x.min, digits)} | ${fmt(x.max, digits)} | ${fmt(cold[0]![k], digits)}` }
  const s = summarize(warm.map(d => d.rate))
  const cpuMs = summarize(warm.map(d => d.cpuMs)).median
  const machine = summarize(warm.map(d => d.machine)).median
  const runner = summarize(warm.map(d => d.runner)).median
  const floorText = floors.map(f => `${f.kind === 'noop' ? 'BullMQ alone (a no-op processor)' : 'BullMQ + the POST to the backend'} ${fmt(f.warm.rate)}/s at ${fmt(f.warm.cpuMs, 2)} worker CPU ms/job warm (${fmt(f.cold.cpuMs, 2)} cold)`).join('; ')
  sections.push(`### End-to-end ingestion dispatch\n\nOne worker process (ingestion queue only, INGESTION_CONCURRENCY default, pinned to CPU ${SERVER_CPU}; the API server idle on the same core) against an instant backend (HTTP 200 {status: succeeded}) in this process on CPU ${CLIENT_CPU}. Per round: the queue paused, ${E2E_INGESTIONS} ingestions triggered through the API, the queue resumed; rate = ingestions finished / wall time from the resume until no row is queued or running (polled every 25 ms). The same worker process drains every round: round 1 is its first ${E2E_INGESTIONS} ingestions after its start ("cold", the JIT still compiling the job's code), the ${rounds - 1} after it are the steady state of a worker that has been running (the median, min and max are theirs). The worker keeps its production schedules (the recovery sweep every 30 s, one indexed read when nothing is stuck), so a sweep may fall inside a round.\n\n| metric | median | min | max | cold (round 1) |\n|---|---:|---:|---:|---:|\n| ingestions/s (wall) | ${col('rate', 0)} |\n| ingestions/s (first started_at → last finished_at) | ${col('dbRate', 0)} |\n| worker CPU, % of one core | ${col('cpuPct', 0)} |\n| worker CPU ms per ingestion | ${col('cpuMs')} |\n| MySQL server CPU ms per ingestion | ${col('mysql')} |\n| Redis server CPU ms per ingestion | ${col('redis')} |\n| bench runner (instant backend + poller) CPU ms per ingestion | ${col('runner')} |\n| whole machine busy CPU ms per ingestion (both cores, everything) | ${col('machine')} |\n\nCPU-bound ceiling on one uncontended core ≈ 1000 / (worker CPU ms per ingestion) = ${fmt(1000 / cpuMs)} ingestions/s; the machine's ceiling with everything a dispatch costs on its ${cpuCount()} cores ≈ ${cpuCount()} × 1000 / (machine busy ms per ingestion) = ${fmt(cpuCount() * 1000 / machine)} ingestions/s, or ${fmt(cpuCount() * 1000 / (machine - runner))} ingestions/s if the bench's own backend and poller ran elsewhere.\n\nFloors (bench/worker.ts with BENCH_WORKER_FLOOR, same core, same worker options, ${E2E_INGESTIONS} jobs per round on the bench's own queue, no MySQL): ${floorText}. The gap between the last floor and the real worker is Quire's bookkeeping per dispatch: the row's two guarded transitions with their events, the signed download URL and the request signature, the status messages for live clients.`)
  targetLine({ scenario: 'end-to-end ingestion dispatch (instant backend)', subject: 'worker', baseline: '-', target: '≥ 500 ingestions/s', value: s, unit: '/s', note: [`steady state (a worker past its first ${E2E_INGESTIONS}); worker ${fmt(cpuMs, 2)} CPU ms/ingestion at ${fmt(summarize(warm.map(d => d.cpuPct)).median)}% of its core; its first ${E2E_INGESTIONS} after start (cold): ${fmt(cold[0]!.rate)}/s at ${fmt(cold[0]!.cpuMs, 2)} ms`, `floors in the same scenario: ${floorText}`, ...notes].join('; '), min: 500 }, s.median)
}

export const ingestE2e: Scenario = { name: 'ingest-e2e', server: 'local', run }
