#!/usr/bin/env node
/**
 * `npm run dev:all`: the API, the worker and the reference ingestion backend for local development,
 * in one terminal, output prefixed [api] [worker] [ingest] (and [clamd] when CLAMD_URL is a
 * tcp:// address on this machine: scripts/clamd.mjs). Ctrl-C (SIGINT/SIGTERM) stops all
 * three; when one of them exits, the other two are stopped. Reads ./.env as the entry points do; the
 * backend listens where INGESTION_URL points and shares INGESTION_SECRET (passed in its environment,
 * not on its command line).
 */
import { existsSync } from 'node:fs'
import { delimiter, resolve } from 'node:path'
import concurrently from 'concurrently'

if (existsSync('.env')) process.loadEnvFile('.env')
const fail = (message) => { console.error(`dev:all: ${message}`); process.exit(1) }
if ((process.env.INGESTION_SECRET ?? '') === '') fail('INGESTION_SECRET is not set: cp .env.example .env (or export it)')

const ingestion = new URL(process.env.INGESTION_URL || 'http://127.0.0.1:8081/ingest')
const LOCAL = new Set(['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'])
if (!LOCAL.has(ingestion.hostname)) fail(`INGESTION_URL (${ingestion.origin}) is not on this machine: start the API and the worker alone (npm run dev, npm run dev:worker)`)
const port = ingestion.port || (ingestion.protocol === 'https:' ? '443' : '80')
// The backend reads HOST, PORT and LOG_LEVEL too, meant for the API here: its flags win over them.
const PY_LEVELS = { trace: 'DEBUG', debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR', fatal: 'CRITICAL', silent: 'CRITICAL' }
const level = PY_LEVELS[process.env.LOG_LEVEL || 'info'] ?? 'INFO'
const python = process.env.PYTHON || 'python3'

function clamd () {
  if ((process.env.CLAMD_URL ?? '') === '') return []
  const url = new URL(process.env.CLAMD_URL)
  if (url.protocol !== 'tcp:' || !LOCAL.has(url.hostname)) return []
  const max = process.env.UPLOAD_MAX_BYTES || String(1024 * 1024 * 1024)
  return [{ name: 'clamd', command: `node scripts/clamd.mjs --port ${url.port || 3310} --max-bytes ${max}`, env, prefixColor: 'red' }]
}

// Works as `node scripts/dev-all.mjs` too, not only through npm (which puts node_modules/.bin on PATH).
const env = { PATH: `${resolve('node_modules/.bin')}${delimiter}${process.env.PATH ?? ''}` }
// --clear-screen=false: a restart must not wipe the other processes' output.
const { commands, result } = concurrently([
  { name: 'api', command: 'tsx watch --clear-screen=false src/server.ts', env, prefixColor: 'cyan' },
  { name: 'worker', command: 'tsx watch --clear-screen=false src/worker.ts', env, prefixColor: 'magenta' },
  { name: 'ingest', command: `${python} examples/ingestion-service/server.py --host ${ingestion.hostname.replace(/^\[|\]$/g, '')} --port ${port} --log-level ${level}`, env, prefixColor: 'yellow' },
  // With CLAMD_URL on this machine, a private clamd too (scripts/clamd.mjs: the EICAR test
  // signature only, enough to see scanning work; use the compose `clamav` service for real signatures).
  ...clamd(),
], { prefix: '[{name}]', killOthersOn: [] })

// concurrently forwards SIGINT/SIGTERM/SIGHUP to each process tree itself. When one process exits on
// its own, stop the others once (concurrently's killOthers would also fire during a Ctrl-C and send a
// second signal, which makes the API skip its graceful close).
let stopping = false
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => { stopping = true })
for (const c of commands) {
  c.close.subscribe(({ exitCode }) => {
    if (stopping) return
    stopping = true
    console.error(`[dev:all] ${c.name} exited (${exitCode}): stopping the others`)
    for (const other of commands) other.kill('SIGTERM')
  })
}
result.then(() => { process.exitCode = 0 }, () => { process.exitCode = 1 })
