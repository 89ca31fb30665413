/**
 * Quire benchmark suite (issue 7). `npm run bench` runs every scenario; `-- --quick` is a smoke
 * run; `-- --scenario read,login` runs some; `-- --profile` writes the bench server's CPU profile
 * to bench/out/. The server under test runs pinned to CPU 0, this process (the load generator)
 * to CPU 1; every scenario alternates baseline and subject rounds inside one run. One file per
 * scenario in bench/scenarios/; what they share in bench/runner/; why the figures are what they
 * are in bench/ANALYSIS.md.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { runMigrations } from '../drizzle/migrate.js'
import { seed, dropDatabase } from './seed.js'
import { fmt, machineInfo, onCleanup, runCleanups } from './lib.js'
import { argv, BCRYPT_COST, DATABASE_URL, DOCS, here, OUT_DIR, QUICK, REDIS_PREFIX, selected, USERS } from './runner/options.js'
import { deleteRedisPrefix, log, pinSelf, startBackend, startServer, tokenFor, type Scenario } from './runner/harness.js'
import { renderReport } from './runner/report.js'
import { read } from './scenarios/read.js'
import { readApiKey } from './scenarios/read-apikey.js'
import { readReplica } from './scenarios/read-replica.js'
import { login } from './scenarios/login.js'
import { ingestPost } from './scenarios/ingest-post.js'
import { ingestE2e } from './scenarios/ingest-e2e.js'
import { upload } from './scenarios/upload.js'
import { uploadS3 } from './scenarios/upload-s3.js'
import { uploadTus } from './scenarios/upload-tus.js'
import { webhooks } from './scenarios/webhooks.js'

/** In the order they run (options.ts ALL lists the names). */
const SCENARIOS: Scenario[] = [read, readApiKey, readReplica, login, ingestPost, ingestE2e, webhooks, upload, uploadS3, uploadTus]

async function main (): Promise<void> {
  const started = new Date()
  const t0 = Date.now()
  const startLoad = machineInfo().loadavg ?? ''
  const pinned = pinSelf() && spawnSync('taskset', ['--version']).status === 0
  if (!pinned) log('taskset unavailable: running unpinned')
  const storageDir = mkdtempSync(join(tmpdir(), 'quire-bench-'))
  onCleanup('remove storage dir', () => rmSync(storageDir, { recursive: true, force: true }))
  onCleanup('delete redis keys', async () => { const n = await deleteRedisPrefix(); log(`cleanup: deleted ${n} Redis keys under ${REDIS_PREFIX}:`) })
  onCleanup('drop database', async () => { await dropDatabase(DATABASE_URL); log('cleanup: dropped the bench database') })
  await dropDatabase(DATABASE_URL)
  await runMigrations(DATABASE_URL)
  log(`seeding ${DOCS} documents, ${USERS} users...`)
  const ts = Date.now()
  const seeded = await seed(DATABASE_URL, { users: USERS, docs: DOCS, bcryptCost: BCRYPT_COST })
  log(`seeded in ${fmt((Date.now() - ts) / 1000, 1)} s`)
  const backend = await startBackend()

  const chosen = SCENARIOS.filter(s => selected.has(s.name))
  const local = chosen.filter(s => s.server === 'local')
  if (local.length > 0) {
    const server = await startServer({ STORAGE_DRIVER: 'local', STORAGE_DIR: storageDir, INGESTION_URL: backend.url })
    const token = await tokenFor(server, seeded.userIds[0]!)
    for (const s of local) {
      log(`== ${s.name}`)
      if (s.server === 'local') await s.run({ server, seeded, token, backend, storageDir })
    }
    await server.stop()
  }
  for (const s of chosen) {
    if (s.server !== 'own') continue
    log(`== ${s.name}`)
    await s.run({ seeded, backend })
  }

  const report = renderReport(started, pinned, (Date.now() - t0) / 1000, startLoad)
  const full = !QUICK && argv.scenario === undefined
  const outFile = argv.out ?? (full ? join(here, 'RESULTS.md') : join(OUT_DIR, 'RESULTS.partial.md'))
  mkdirSync(dirname(outFile), { recursive: true })
  writeFileSync(outFile, report)
  log('\n' + report.split('## Details')[0]!.split('## Targets (issue 7)')[1]!.trim())
  log(`\nwritten to ${outFile}`)
}

let interrupted = false
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return
    interrupted = true
    console.error(`\n${sig}: cleaning up...`)
    runCleanups().finally(() => process.exit(130))
  })
}

try {
  await main()
  await runCleanups()
  process.exit(0)
} catch (err) {
  console.error(err)
  await runCleanups()
  process.exit(1)
}
