import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'

/** Small helpers shared by the bench scripts: child processes, stats, load runs, RSS. */

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export function median (xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export interface Summary { median: number, min: number, max: number, n: number }

export function summarize (xs: number[]): Summary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
}

export const fmt = (n: number, digits = 0): string => Number.isFinite(n) ? n.toFixed(digits) : 'n/a'

/** Cleanup steps, run once in reverse order on normal exit, failure or Ctrl-C. */
const cleanups: Array<{ name: string, fn: () => Promise<unknown> | unknown }> = []
let cleaning: Promise<void> | null = null

export function onCleanup (name: string, fn: () => Promise<unknown> | unknown): void {
  cleanups.push({ name, fn })
}

export async function runCleanups (): Promise<void> {
  if (cleaning !== null) return await cleaning
  cleaning = (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!
      try {
        await c.fn()
      } catch (err) {
        console.error(`cleanup ${c.name} failed: ${(err as Error).message}`)
      }
    }
  })()
  await cleaning
}

export interface Child {
  proc: ChildProcess
  pid: number
  ready: Record<string, unknown>
  stop: () => Promise<void>
}

/**
 * Spawns `node --import=tsx <script>` pinned to `cpus` (taskset), waits for its
 * `BENCH_READY <json>` line on stdout, and registers its termination as a cleanup.
 */
export async function startChild (name: string, script: string, opts: { cpus?: string, env?: Record<string, string>, nodeArgs?: string[], timeoutMs?: number } = {}): Promise<Child> {
  const nodeArgs = ['--import=tsx', ...(opts.nodeArgs ?? []), script]
  const cmd = opts.cpus !== undefined ? 'taskset' : process.execPath
  const args = opts.cpus !== undefined ? ['-c', opts.cpus, process.execPath, ...nodeArgs] : nodeArgs
  const proc = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let exited = false
  const exitP = new Promise<void>(resolve => proc.once('exit', () => { exited = true; resolve() }))
  const stop = async (): Promise<void> => {
    if (exited) return
    proc.kill('SIGTERM')
    const t = setTimeout(() => proc.kill('SIGKILL'), 8000)
    await exitP
    clearTimeout(t)
  }
  onCleanup(`stop ${name}`, stop)
  const errLines: string[] = []
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    errLines.push(l)
    if (errLines.length > 50) errLines.shift()
    if (process.env.BENCH_VERBOSE === '1' || /error|warn/i.test(l)) process.stderr.write(`[${name}] ${l.slice(0, 400)}\n`)
  })
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready within ${opts.timeoutMs ?? 60000} ms:\n${errLines.join('\n')}`)), opts.timeoutMs ?? 60000)
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (l.startsWith('BENCH_READY ')) {
        clearTimeout(timer)
        resolve(JSON.parse(l.slice('BENCH_READY '.length)) as Record<string, unknown>)
      } else if (process.env.BENCH_VERBOSE === '1' || /"level":(40|50|60)/.test(l)) {
        process.stderr.write(`[${name}] ${l.slice(0, 400)}\n`)
      }
    })
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code ?? 'signal'} before ready:\n${errLines.join('\n')}`))
    })
  })
  return { proc, pid: proc.pid!, ready, stop }
}

/** VmRSS and VmHWM of a process in bytes (Linux). */
export function procMem (pid: number): { rss: number, hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

/** CPU seconds (user + system, all threads) a process has used so far (Linux). */
export function procCpu (pid: number): number {
  const t = procTimes(pid)
  return t.user + t.system
}

/** Busy CPU seconds of the whole machine so far, all cores (Linux /proc/stat: everything but idle and iowait). */
export function machineBusy (): number {
  try {
    // user nice system idle iowait irq softirq steal guest guest_nice: busy is what this machine
    // ran (user, nice, system, irq, softirq), not the time its host gave to others (steal) nor
    // guest time (already counted in user)
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0)) / 100
  } catch {
    return NaN
  }
}

/** The pid of a running program by its exact name (the local MySQL/Redis servers), or null. */
export function pidOf (...names: string[]): number | null {
  for (const name of names) {
    const r = spawnSync('pgrep', ['-xo', name], { encoding: 'utf8' })
    const pid = Number(r.stdout.trim())
    if (r.status === 0 && pid > 0) return pid
  }
  return null
}

/** User and system CPU seconds of a process (all threads). */
export function procTimes (pid: number): { user: number, system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 } // clock ticks, USER_HZ = 100
  } catch {
    return { user: NaN, system: NaN }
  }
}

/** Samples VmRSS of `pid` every `everyMs` until stopped; returns the peak. */
export function rssSampler (pid: number, everyMs = 10): { stop: () => number } {
  let peak = procMem(pid).rss
  const t = setInterval(() => {
    try {
      const r = procMem(pid).rss
      if (r > peak) peak = r
    } catch { /* process gone */ }
  }, everyMs)
  return { stop: () => { clearInterval(t); return peak } }
}

export interface LoadTarget {
  name: string
  /** another server than the runner's base URL (the bare Fastify hello listens on its own port) */
  base?: string
  /** the process whose CPU the row reports, when not the runner's server (two servers alternated) */
  pid?: number
  method?: 'GET' | 'POST' | 'PATCH'
  path: string | (() => string)
  headers?: Record<string, string>
  body?: string
}

export interface LoadResult {
  rps: number
  p50: number
  p99: number
  total: number
  non2xx: number
  errors: number
  statuses: Record<string, number>
  /** server CPU use during the run, in % of one core (NaN when no pid was given) */
  cpu: number
  /** server CPU milliseconds per 2xx answer */
  cpuMsPerReq: number
  /** set by the runner: MySQL server and whole-machine busy CPU milliseconds per 2xx answer */
  mysqlMsPerReq?: number
  machineMsPerReq?: number
  /** the load generator's own CPU milliseconds per 2xx answer (autocannon runs in this process) */
  genMsPerReq: number
}

/** One autocannon run against `target`; rps counts only 2xx answers. */
export async function load (baseUrl: string, target: LoadTarget, opts: { seconds?: number, amount?: number, connections: number, pid?: number }): Promise<LoadResult> {
  const pathFn = typeof target.path === 'function' ? target.path : null
  const headers = { ...(target.body !== undefined ? { 'content-type': 'application/json' } : {}), ...target.headers }
  const cpu0 = opts.pid !== undefined ? procCpu(opts.pid) : NaN
  const gen0 = process.cpuUsage()
  const started = process.hrtime.bigint()
  const result = await autocannon({
    url: target.base ?? baseUrl,
    connections: opts.connections,
    ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.seconds ?? 3 }),
    requests: [{
      method: target.method ?? 'GET',
      path: typeof target.path === 'string' ? target.path : '/',
      headers,
      body: target.body,
      ...(pathFn !== null ? { setupRequest: (req: autocannon.Request) => ({ ...req, path: pathFn() }) } : {}),
    }],
  })
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9
  const gen = process.cpuUsage(gen0)
  const cpuUsed = (opts.pid !== undefined ? procCpu(opts.pid) : NaN) - cpu0
  const statuses: Record<string, number> = {}
  for (const [code, v] of Object.entries((result as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {})) statuses[code] = v.count
  const ok = result['2xx']
  const seconds = opts.amount !== undefined ? elapsed : Math.min(elapsed, (result.duration > 0 ? result.duration : elapsed))
  return {
    rps: ok / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    statuses,
    cpu: 100 * cpuUsed / elapsed,
    cpuMsPerReq: ok > 0 ? 1000 * cpuUsed / ok : NaN,
    genMsPerReq: ok > 0 ? (gen.user + gen.system) / 1000 / ok : NaN,
  }
}

/** A compact description of the non-2xx status codes of a run, for the report. */
export function badStatuses (r: LoadResult): string {
  return Object.entries(r.statuses).filter(([c]) => !c.startsWith('2')).map(([c, n]) => `${c}×${n}`).join(' ')
}

/** Machine description for RESULTS.md. */
export function machineInfo (): Record<string, string> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown'
  const cpus = cpuinfo.split('\n').filter(l => l.startsWith('processor')).length
  const mem = /^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]
  let load = ''
  try { load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') } catch { /* not linux */ }
  return {
    cpus: String(cpus),
    model,
    memory: mem !== undefined ? `${(Number(mem) / 1024 / 1024).toFixed(1)} GiB` : 'unknown',
    node: process.version,
    loadavg: load,
  }
}
