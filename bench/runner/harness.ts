/** What every scenario uses: the results model, the server under test, the load rounds, the instant backend. */
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { randomHex, type Seeded } from '../seed.js'
import {
  badStatuses, fmt, load, machineBusy, onCleanup, procCpu, startChild, summarize,
  type Child, type LoadResult, type LoadTarget, type Summary,
} from '../lib.js'
import {
  type ScenarioName, argv, BCRYPT_COST, CLIENT_CPU, here, ingestionSecret, jwtSecret, MYSQLD_PID, OUT_DIR, DATABASE_URL, REDIS_PREFIX, REDIS_URL, SERVER_CPU, START_FLAGS, storageUrlSecret,
} from './options.js'

export interface Row { label: string, rps: Summary, p50: number, p99: number, cpu: number, cpuMs: number, mysqlMs: number, machineMs: number, genMs: number, notes: string }
export interface TargetLine { scenario: string, subject: string, baseline: string, target: string, ratio?: Summary, value?: Summary, unit?: string, met: boolean | null, note: string }
export const targetLines: TargetLine[] = []
export const sections: string[] = []
export const log = (s: string): void => { console.log(s) }

export function ratioOf (subject: number[], baseline: number[]): Summary {
  return summarize(subject.map((s, i) => s / baseline[i]!))
}

// ---------------------------------------------------------------- environment

export function pinSelf (): boolean {
  const r = spawnSync('taskset', ['-a', '-cp', CLIENT_CPU, String(process.pid)], { encoding: 'utf8' })
  return r.status === 0
}

export async function deleteRedisPrefix (): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  let n = 0
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${REDIS_PREFIX}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) n += await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
  return n
}

export interface ServerHandle extends Child { base: string }

export function serverEnv (extra: Record<string, string>): Record<string, string> {
  return {
    DATABASE_URL,
    REDIS_URL,
    REDIS_PREFIX,
    JWT_SECRET: `bench-${randomHex(24)}`,
    STORAGE_URL_SECRET: storageUrlSecret,
    INGESTION_SECRET: `bench-${randomHex(16)}`,
    LOG_LEVEL: 'warn',
    BCRYPT_COST: String(BCRYPT_COST),
    RATE_LIMIT_MAX: '1000000000',
    API_KEY_RATE_LIMIT_MAX: '1000000000',
    LOGIN_MAX_ATTEMPTS: '1000000000',
    UPLOAD_MAX_BYTES: String(4 * 1024 * 1024 * 1024),
    UPLOAD_ALLOWED_TYPES: '*/*',
    ADMIN_EMAIL: '',
    ADMIN_PASSWORD: '',
    NODE_ENV: 'production',
    ...extra,
  }
}

export async function startServer (extra: Record<string, string>): Promise<ServerHandle> {
  const env = serverEnv({ JWT_SECRET: jwtSecret, INGESTION_SECRET: ingestionSecret, BENCH_OUT_DIR: OUT_DIR, ...extra })
  const nodeArgs = ['--expose-gc', ...START_FLAGS]
  if (argv.profile === true) {
    // the whole process (written at exit); the runner also captures one profile per target (last round)
    mkdirSync(OUT_DIR, { recursive: true })
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${OUT_DIR}`)
  }
  const child = await startChild('server', join(here, 'server.ts'), { cpus: SERVER_CPU, env, nodeArgs })
  return { ...child, base: `http://127.0.0.1:${String(child.ready.port)}` }
}

export async function tokenFor (server: ServerHandle, userId: string): Promise<string> {
  const res = await fetch(`${server.base}/__bench/session-for`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) })
  if (res.status !== 200) throw new Error(`session-for answered ${res.status}: ${await res.text()}`)
  return (await res.json() as { accessToken: string }).accessToken
}

/** Probes a route: available when it answers `expect`. */
export async function probe (url: string, init: RequestInit, expect: number): Promise<{ ok: boolean, why: string }> {
  const res = await fetch(url, init)
  const text = await res.text()
  if (res.status === expect) return { ok: true, why: '' }
  if (res.status === 404) return { ok: false, why: 'skipped: route not available (404)' }
  return { ok: false, why: `skipped: probe answered ${res.status}: ${text.slice(0, 200)}` }
}

/** Warm up each target, then alternate them for ROUNDS rounds. */
/**
 * Each target in turn, `rounds` times. `reverseOddRounds`: every other round runs the targets in the
 * reverse order (A B, B A, ...), so a pair compared within a round is not always measured in the
 * same order (whatever the first of two targets leaves behind, or gets, evens out).
 */
export async function alternate (base: string, targets: LoadTarget[], opts: { rounds: number, seconds: number, connections: number, pid: number, reverseOddRounds?: boolean }): Promise<Map<string, LoadResult[]>> {
  for (const t of targets) await load(base, t, { seconds: Math.min(1, opts.seconds), connections: opts.connections })
  const out = new Map<string, LoadResult[]>(targets.map(t => [t.name, []]))
  for (let r = 0; r < opts.rounds; r++) {
    const line: string[] = []
    for (const t of opts.reverseOddRounds === true && r % 2 === 1 ? [...targets].reverse() : targets) {
      const profiling = argv.profile === true && r === opts.rounds - 1
      if (profiling) await fetch(`${base}/__bench/profile/start`, { method: 'POST' })
      const before = { mysql: MYSQLD_PID !== null ? procCpu(MYSQLD_PID) : NaN, machine: machineBusy() }
      const res = await load(base, t, { seconds: opts.seconds, connections: opts.connections, pid: t.pid ?? opts.pid })
      const ok = Math.max(1, res.total - res.non2xx)
      res.mysqlMsPerReq = 1000 * ((MYSQLD_PID !== null ? procCpu(MYSQLD_PID) : NaN) - before.mysql) / ok
      res.machineMsPerReq = 1000 * (machineBusy() - before.machine) / ok
      if (profiling) await fetch(`${base}/__bench/profile/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: t.name }) })
      out.get(t.name)!.push(res)
      line.push(`${t.name} ${fmt(res.rps)}/s cpu ${fmt(res.cpu)}%${res.non2xx + res.errors > 0 ? ` (!${badStatuses(res)} err ${res.errors})` : ''}`)
    }
    log(`  round ${r + 1}/${opts.rounds}: ${line.join(' | ')}`)
  }
  return out
}

export function rowFor (label: string, runs: LoadResult[]): Row {
  const bad = runs.map(badStatuses).filter(s => s !== '')
  const errs = runs.reduce((a, r) => a + r.errors, 0)
  return {
    label,
    rps: summarize(runs.map(r => r.rps)),
    p50: summarize(runs.map(r => r.p50)).median,
    p99: summarize(runs.map(r => r.p99)).median,
    cpu: summarize(runs.map(r => r.cpu)).median,
    cpuMs: summarize(runs.map(r => r.cpuMsPerReq)).median,
    mysqlMs: summarize(runs.map(r => r.mysqlMsPerReq ?? NaN)).median,
    machineMs: summarize(runs.map(r => r.machineMsPerReq ?? NaN)).median,
    genMs: summarize(runs.map(r => r.genMsPerReq)).median,
    notes: [bad.length > 0 ? `non-2xx: ${bad.join(', ')}` : '', errs > 0 ? `${errs} socket errors/timeouts` : ''].filter(Boolean).join('; '),
  }
}

export function table (rows: Row[]): string {
  return ['| target | req/s median | min | max | p50 ms | p99 ms | server CPU % | server CPU ms/req | MySQL CPU ms/req | machine busy ms/req | notes |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(r => `| ${r.label} | ${fmt(r.rps.median, 1)} | ${fmt(r.rps.min, 1)} | ${fmt(r.rps.max, 1)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpu)} | ${fmt(r.cpuMs, 2)} | ${fmt(r.mysqlMs, 2)} | ${fmt(r.machineMs, 2)} | ${r.notes} |`)].join('\n')
}

/** The same comparison in server CPU per request (baseline ms ÷ subject ms): robust to a shared core. */
export function cpuRatio (subject: LoadResult[], baseline: LoadResult[]): Summary {
  return summarize(subject.map((s, i) => baseline[i]!.cpuMsPerReq / s.cpuMsPerReq))
}

export function targetLine (t: Omit<TargetLine, 'met'> & { min: number }, value: number): TargetLine {
  const line = { ...t, met: Number.isFinite(value) ? value >= t.min : null }
  targetLines.push(line)
  return line
}

export const ingestPath = (ids: string[], prefix?: string): (() => string) => {
  let i = 0
  return () => prefix === undefined ? `/documents/${ids[i++ % ids.length]!}/ingestions` : `${prefix}${ids[i++ % ids.length]!}`
}

export interface Backend { url: string, server: Server, count: () => number }

export async function startBackend (): Promise<Backend> {
  let n = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      n++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"status":"succeeded","result":{"bench":true}}')
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  onCleanup('stop backend', async () => await new Promise(resolve => { server.closeAllConnections(); server.close(() => resolve(undefined)) }))
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  return { url: `http://127.0.0.1:${port}/ingest`, server, count: () => n }
}

/** What a scenario run against the shared local-storage server gets. */
export interface Ctx { server: ServerHandle, seeded: Seeded, token: string, backend: Backend, storageDir: string }
/** What a scenario that starts its own server gets. */
export interface BaseCtx { seeded: Seeded, backend: Backend }

/** One scenario: `local` ones run against the shared local-storage server, `own` ones start theirs. */
export type Scenario =
  | { name: ScenarioName, server: 'local', run: (ctx: Ctx) => Promise<void> }
  | { name: ScenarioName, server: 'own', run: (ctx: BaseCtx) => Promise<void> }
