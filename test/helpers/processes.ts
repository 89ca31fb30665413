// Child processes in tests: the API, the worker, the reference Python backend, dev:all. One way to
// spawn them, wait until they say they are ready (a condition, not a fixed sleep), kill them and make
// sure nothing outlives the test.
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../../src/config.js'

export const ROOT = new URL('../..', import.meta.url).pathname

/**
 * How long a process may take to say it is ready. Generous on purpose: a cold `tsx` start (every
 * module transpiled) of the API or the worker has taken well over 30 s with a load average of 20+.
 * A process that exits first fails the wait at once, so a broken start is not slow to report.
 */
export const START_TIMEOUT_MS = 150_000

interface Teardownable { teardown: (fn: () => unknown) => void }

export interface Proc {
  child: ChildProcess
  /** stdout and stderr so far, interleaved as they came. */
  output: () => string
  /** Resolves (never rejects) once the process has exited. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  running: () => boolean
  /** Sends `signal` (default SIGKILL) if it still runs and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * Spawns `command args` in the repo root with stdout and stderr collected. With `t`, a process still
 * running when the test ends is SIGKILLed and waited for.
 */
export function spawnProcess (command: string, args: string[], opts: { env?: NodeJS.ProcessEnv, t?: Teardownable } = {}): Proc {
  const child = spawn(command, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const collect = (d: Buffer): void => { out += d.toString('utf8') }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  let done = false
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { done = true; resolve({ code, signal }) })
    child.once('error', (err) => { done = true; out += `\nspawn error: ${err.message}`; resolve({ code: null, signal: null }) })
  })
  const running = (): boolean => !done
  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (running()) child.kill(signal)
    return await exited
  }
  opts.t?.teardown(async () => { await stop('SIGKILL') })
  return { child, output: () => out, exited, running, stop }
}

/** `node --import=tsx <entry>` (src/server.ts, src/worker.ts), as the dev scripts run it. */
export function spawnEntry (entry: string, env: NodeJS.ProcessEnv, t?: Teardownable): Proc {
  return spawnProcess(process.execPath, ['--import=tsx', entry], { env, t })
}

/**
 * Waits until the output satisfies `ready` (a substring, a regular expression whose match is returned,
 * or a function returning a value). Rejects with the output when the process exits first or after `ms`;
 * `killOnFailure` then SIGKILLs it (for callers without a teardown).
 */
export async function waitForOutput<T = RegExpExecArray> (proc: Proc, ready: string | RegExp | ((out: string) => T | undefined | null | false), opts: { ms?: number, what?: string, killOnFailure?: boolean } = {}): Promise<T> {
  const ms = opts.ms ?? START_TIMEOUT_MS
  const what = opts.what ?? 'the process'
  const check = (): T | undefined => {
    const out = proc.output()
    if (typeof ready === 'string') return out.includes(ready) ? ([ready] as unknown as T) : undefined
    if (ready instanceof RegExp) return (ready.exec(out) ?? undefined) as T | undefined
    return ready(out) || undefined
  }
  const end = Date.now() + ms
  for (;;) {
    const found = check()
    if (found !== undefined) return found
    const problem = !proc.running() ? `exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready` : Date.now() > end ? `was not ready within ${ms} ms` : undefined
    if (problem !== undefined) {
      if (opts.killOnFailure === true) await proc.stop('SIGKILL')
      throw new Error(`${what} ${problem}:\n${proc.output()}`)
    }
    await sleep(50)
  }
}

/** Whether GET `url` answers 2xx within 2 s. */
export async function httpOk (url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.ok
  } catch { return false }
}

/** Polls GET `url` until it answers 2xx; rejects after `ms` (or when `proc` exits first). */
export async function waitForHttp (url: string, opts: { ms?: number, proc?: Proc } = {}): Promise<void> {
  const ms = opts.ms ?? START_TIMEOUT_MS
  const end = Date.now() + ms
  while (!(await httpOk(url))) {
    if (opts.proc !== undefined && !opts.proc.running()) throw new Error(`${url}: the process exited before it answered:\n${opts.proc.output()}`)
    if (Date.now() > end) throw new Error(`${url} did not answer 2xx within ${ms} ms${opts.proc !== undefined ? `:\n${opts.proc.output()}` : ''}`)
    await sleep(250)
  }
}

/**
 * The environment of an API or worker process that shares the in-test app's world (`config`): its
 * database, Redis prefix, secrets and storage. The recovery and thumbnail sweeps are off (files share one database)
 * and the log level is `info` (readiness is read from the log). `extra` adds or overrides.
 */
export function processEnv (config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const storage: Record<string, string> = config.STORAGE_DRIVER === 's3'
    ? {
        STORAGE_DRIVER: 's3',
        S3_ENDPOINT: config.S3_ENDPOINT,
        S3_BUCKET: config.S3_BUCKET,
        S3_REGION: config.S3_REGION,
        S3_ACCESS_KEY_ID: config.S3_ACCESS_KEY_ID,
        S3_SECRET_ACCESS_KEY: config.S3_SECRET_ACCESS_KEY,
        S3_FORCE_PATH_STYLE: String(config.S3_FORCE_PATH_STYLE),
      }
    : { STORAGE_DRIVER: 'local', STORAGE_DIR: config.STORAGE_DIR }
  return {
    ...process.env,
    DATABASE_URL: config.DATABASE_URL,
    REDIS_URL: config.REDIS_URL,
    REDIS_PREFIX: config.REDIS_PREFIX,
    JWT_SECRET: config.JWT_SECRET,
    STORAGE_URL_SECRET: config.STORAGE_URL_SECRET,
    INGESTION_SECRET: config.INGESTION_SECRET,
    INGESTION_URL: config.INGESTION_URL,
    INGESTION_RECOVERY_INTERVAL_MS: '0',
    THUMBNAIL_SWEEP_INTERVAL_MS: '0',
    ...storage,
    LOG_LEVEL: 'info',
    ...extra,
  }
}

/** Starts `src/worker.ts` in `config`'s world and resolves once it logged "worker started". */
export async function startWorker (t: Teardownable, config: Config, extra: Record<string, string> = {}): Promise<Proc> {
  const proc = spawnEntry('src/worker.ts', processEnv(config, extra), t)
  await waitForOutput(proc, 'worker started', { what: 'the worker' })
  return proc
}
