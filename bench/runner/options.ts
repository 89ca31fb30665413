/** The bench's command line, sizes and connection settings, shared by the runner and every scenario. */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pidOf } from '../lib.js'
import { randomHex } from '../seed.js'

export const here = join(dirname(fileURLToPath(import.meta.url)), '..')
export const cpuCount = (): number => cpus().length
// The local MySQL server, whose CPU per request the tables report next to the server's.
export const MYSQLD_PID = pidOf('mariadbd', 'mysqld')
export const OUT_DIR = join(here, 'out')

export const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    connections: { type: 'string' },
    'upload-mb': { type: 'string' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
})

export const ALL = ['read', 'read-apikey', 'read-replica', 'login', 'ingest-post', 'ingest-e2e', 'webhooks', 'upload', 'upload-s3', 'upload-tus'] as const
export type ScenarioName = typeof ALL[number]

if (argv.help === true) {
  console.log(`usage: npm run bench [-- --quick] [--scenario ${ALL.join('|')} ...] [--rounds N] [--seconds S] [--connections C] [--upload-mb MB] [--profile] [--out FILE]`)
  process.exit(0)
}

export const QUICK = argv.quick === true
export const selected = new Set<ScenarioName>((argv.scenario ?? [...ALL]).flatMap(s => s.split(',')).map(s => {
  if (!(ALL as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s} (known: ${ALL.join(', ')})`)
  return s as ScenarioName
}))
export const ROUNDS = Number(argv.rounds ?? (QUICK ? 1 : 5))
export const SECONDS = Number(argv.seconds ?? (QUICK ? 1 : 2))
export const CONNECTIONS = Number(argv.connections ?? 16)
export const UPLOAD_MB = Number(argv['upload-mb'] ?? (QUICK ? 8 : 100))
export const UPLOAD_ROUNDS = QUICK ? 1 : 3
export const BCRYPT_COST = Number(process.env.BENCH_BCRYPT_COST ?? 12) // the config default
export const USERS = QUICK ? 200 : 1000
export const DOCS = QUICK ? 10_000 : 100_000
export const E2E_INGESTIONS = QUICK ? 300 : 1000
export const SERVER_CPU = '0'
export const CLIENT_CPU = '1'

export const runId = randomHex(4)
export const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_bench'
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const REDIS_PREFIX = `qbench-${runId}`

/** The node flags `npm start` (and `npm run start:worker`) run with (package.json), so the processes under test run like production. */
export const scriptFlags = (name: string): string[] => ((JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts[name] ?? '')
  .split(/\s+/).filter(a => a.startsWith('--'))
export const START_FLAGS = scriptFlags('start')
export const WORKER_FLAGS = scriptFlags('start:worker')

export const jwtSecret = `bench-${randomHex(24)}`
/** Shared by the API and the workers: workers sign local-storage URLs the API verifies. */
export const storageUrlSecret = `bench-${randomHex(24)}`
export const ingestionSecret = `bench-${randomHex(16)}`
