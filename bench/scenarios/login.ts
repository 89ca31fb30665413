/** POST /auth/login against a raw bcrypt verify of the same cost. */
import { fmt, type LoadTarget } from '../lib.js'
import { BENCH_PASSWORD, benchEmail } from '../seed.js'
import { alternate, cpuRatio, log, probe, ratioOf, rowFor, sections, table, targetLine, type Ctx, type Scenario } from '../runner/harness.js'
import { BCRYPT_COST, QUICK, ROUNDS, SECONDS } from '../runner/options.js'

async function run (ctx: Ctx): Promise<void> {
  const { server } = ctx
  const body = JSON.stringify({ email: benchEmail(0), password: BENCH_PASSWORD })
  const p = await probe(`${server.base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }, 200)
  if (!p.ok) { targetLine({ scenario: 'POST /auth/login', subject: 'login', baseline: 'raw bcrypt verify', target: '≥ 0.9', note: p.why, min: 0.9 }, NaN); return }
  const conns = 4
  const targets: LoadTarget[] = [
    { name: `raw bcrypt verify (cost ${BCRYPT_COST})`, method: 'POST', path: '/__bench/bcrypt', body: '{}' },
    { name: 'POST /auth/login', method: 'POST', path: '/auth/login', body },
  ]
  // ~3 logins/s with 4 in flight at ~1 s each: a round's count is quantized by the in-flight
  // requests its end cuts off, so rounds are long enough for that to stay a few percent.
  const seconds = Math.max(SECONDS, QUICK ? 2 : 12)
  log(`login: bcrypt cost ${BCRYPT_COST}, ${ROUNDS} rounds x ${seconds}s, ${conns} connections`)
  const res = await alternate(server.base, targets, { rounds: ROUNDS, seconds, connections: conns, pid: server.pid })
  const base = res.get(targets[0]!.name)!.map(r => r.rps)
  const subj = res.get(targets[1]!.name)!.map(r => r.rps)
  const rows = targets.map(t => rowFor(t.name, res.get(t.name)!))
  sections.push(`### Login vs raw bcrypt\n\nBoth on the pinned server core (libuv pool threads included), cost ${BCRYPT_COST}, ${conns} connections, ${ROUNDS} rounds of ${seconds} s.\n\n${table(rows)}`)
  const ratio = ratioOf(subj, base)
  const crl = cpuRatio(res.get(targets[1]!.name)!, res.get(targets[0]!.name)!)
  targetLine({ scenario: 'POST /auth/login', subject: 'login', baseline: `raw @node-rs/bcrypt verify, cost ${BCRYPT_COST}`, target: '≥ 0.90', ratio, note: `${fmt(rows[1]!.rps.median, 1)} vs ${fmt(rows[0]!.rps.median, 1)} req/s; CPU-cost ratio ${fmt(crl.median, 2)}; p50 ${fmt(rows[1]!.p50, 1)} ms, p99 ${fmt(rows[1]!.p99, 1)} ms${rows[1]!.notes !== '' ? '; ' + rows[1]!.notes : ''}`, min: 0.9 }, ratio.median)
}

export const login: Scenario = { name: 'login', server: 'local', run }
