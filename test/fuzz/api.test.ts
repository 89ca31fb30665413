// Property-based fuzzing of every operation in the app's own OpenAPI document (fixed seed; `npm run fuzz` for long runs).
import { test } from 'tap'
import { build } from '../helper.js'
import { ALL_AUTHS, READ_ONLY_AUTHS, fuzzOperation, report, runsFor, setupFuzz, snapshot } from './harness.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20260611)
/** Runs per operation: with no token / bad tokens / a viewer, then with every role. ~45 operations -> ~3000 requests. */
const RUNS_READ_ONLY = Number(process.env.FUZZ_RUNS_READ_ONLY ?? 22)
const RUNS_ALL = Number(process.env.FUZZ_RUNS ?? 42)

test('fuzz: hostile requests to every documented operation', async (t) => {
  const app = await build(t)
  const ctx = await setupFuzz(app)
  t.ok(ctx.ops.length >= 20, `${ctx.ops.length} operations in the OpenAPI document`)
  t.ok(ctx.bystander.documentId, 'a bystander document exists (POST /documents works)')
  t.ok(ctx.pools.documents.length > 0, 'target documents exist')
  const before = await snapshot(ctx)

  await t.test('no token, broken tokens and a viewer: never a 5xx, always the error shape, nothing written', async (t) => {
    for (const [i, op] of ctx.ops.entries()) {
      const r = await fuzzOperation(ctx, op, { auths: READ_ONLY_AUTHS, numRuns: runsFor(op, RUNS_READ_ONLY), seed: SEED + i })
      t.notOk(r.failed, `${op.key}${r.failed ? `\n${r.message}` : ''}`)
    }
    t.same(await snapshot(ctx), before, 'documents, shares, ingestions, uploads and the bystander admin are unchanged')
  })

  await t.test('every role: never a 5xx, always the error shape', async (t) => {
    for (const [i, op] of ctx.ops.entries()) {
      const r = await fuzzOperation(ctx, op, { auths: ALL_AUTHS, numRuns: runsFor(op, RUNS_ALL), seed: SEED + 1000 + i })
      t.notOk(r.failed, `${op.key}${r.failed ? `\n${r.message}` : ''}`)
    }
    const after = await snapshot(ctx)
    t.same(after.bystanderUser, before.bystanderUser, 'the bystander admin row is unchanged')
    t.same(after.bystanderSessions, before.bystanderSessions, 'the bystander admin session is not revoked')
    t.same(after.bystanderDoc, before.bystanderDoc, 'the bystander private document row is unchanged')
  })

  await t.test('the fuzz did not break what it should not have touched', async (t) => {
    for (const user of [ctx.principals.viewer, ctx.principals.editor, ctx.principals.admin, ctx.bystander.user]) {
      const me = await app.inject({ method: 'GET', url: '/auth/me', headers: user.headers })
      t.equal(me.statusCode, 200, `${user.role} token still works`)
    }
    if (ctx.bystander.documentId !== null) {
      const res = await app.inject({ method: 'GET', url: `/documents/${ctx.bystander.documentId}/content`, headers: ctx.bystander.user.headers })
      t.equal(res.statusCode, 200, 'bystander document content still readable')
      t.equal(res.body, 'do not touch\n', 'bystander document bytes unchanged')
    }
  })

  t.comment(report(ctx))
  for (const f of ctx.findings.slice(0, 20)) t.comment(`FINDING ${f.op} -> ${f.status}: ${f.problems.join('; ')}\n  request: ${f.request}\n  body: ${f.body}`)
})
