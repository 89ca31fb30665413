// `npm run fuzz [-- --runs 500 --seed 123 --op documents]`: the CI fuzz suite's properties with a random
// seed and many more runs. Uses its own database (FUZZ_DATABASE_URL, default quire_fuzz) and Redis prefix.
import { parseArgs } from 'node:util'
import { runMigrations } from '../drizzle/migrate.js'
import { buildApp } from '../src/build.js'
import { testConfig } from '../test/helper.js'
import { ALL_AUTHS, READ_ONLY_AUTHS, fuzzOperation, report, runsFor, setupFuzz, snapshot } from '../test/fuzz/harness.js'

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    runs: { type: 'string', default: '300' },
    op: { type: 'string' },
  },
})
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31)
const runs = Number(values.runs)
const databaseUrl = process.env.FUZZ_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_fuzz'

console.log(`fuzz seed=${seed} runs/op=${runs} db=${databaseUrl}  (replay: npm run fuzz -- --seed ${seed} --runs ${runs})`)
await runMigrations(databaseUrl)
const app = await buildApp(testConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: (process.env.LOG_LEVEL as 'silent' | undefined) ?? 'silent' }))
await app.ready()
let failed = 0
try {
  const ctx = await setupFuzz(app)
  const ops = ctx.ops.filter(o => values.op === undefined || o.key.includes(values.op))
  const before = await snapshot(ctx)
  const started = Date.now()
  for (const [phase, auths, n] of [['read-only', READ_ONLY_AUTHS, Math.ceil(runs / 2)], ['all roles', ALL_AUTHS, runs]] as const) {
    for (const [i, op] of ops.entries()) {
      const r = await fuzzOperation(ctx, op, { auths, numRuns: runsFor(op, n), seed: seed + i + (phase === 'read-only' ? 0 : 1000), timeLimitMs: 10 * 60_000 })
      process.stdout.write(`${r.failed ? 'FAIL' : 'ok  '} ${phase.padEnd(9)} ${op.key} (${r.runs} runs)\n`)
      if (r.failed) { failed++; console.log(r.message) }
    }
    if (phase === 'read-only') {
      const now = await snapshot(ctx)
      if (JSON.stringify(now) !== JSON.stringify(before)) { failed++; console.log('FAIL: read-only callers changed data', JSON.stringify({ before, now }, null, 1)) }
    }
  }
  const after = await snapshot(ctx)
  for (const k of ['bystanderUser', 'bystanderSessions', 'bystanderDoc'] as const) {
    if (JSON.stringify(after[k]) !== JSON.stringify(before[k])) { failed++; console.log(`FAIL: ${k} changed`) }
  }
  console.log(`\n${report(ctx)}\n${((Date.now() - started) / 1000).toFixed(0)} s`)
  for (const f of ctx.findings) console.log(`\nFINDING ${f.op} -> ${f.status}: ${f.problems.join('; ')}\n  request: ${f.request}\n  body: ${f.body}`)
} finally {
  await app.close()
}
console.log(failed === 0 ? `\nno failures (seed ${seed})` : `\n${failed} failure(s) (seed ${seed})`)
process.exit(failed === 0 ? 0 : 1)
