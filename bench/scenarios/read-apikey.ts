/** GET /documents/:id with an API key against the same route with a JWT access token (issue 21: ≤ 1.1× the cost). */
import { fmt, type LoadTarget } from '../lib.js'
import { alternate, cpuRatio, log, probe, ratioOf, rowFor, sections, table, targetLine, type Ctx, type Scenario } from '../runner/harness.js'
import { CONNECTIONS, ROUNDS, SECONDS } from '../runner/options.js'

const JWT = 'GET /documents/:id (JWT access token)'
const KEY = 'GET /documents/:id (API key)'
/** The key may cost at most 1.1× the token: its throughput at least 1/1.1 of the token's. */
const MIN = 1 / 1.1

async function run (ctx: Ctx): Promise<void> {
  const { server, seeded, token } = ctx
  const jwt = { authorization: `Bearer ${token}` }
  const made = await fetch(`${server.base}/api-keys`, { method: 'POST', headers: { ...jwt, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', scopes: ['documents:read'] }) })
  const subject = { scenario: 'GET /documents/:id with an API key', subject: KEY, baseline: JWT, target: `≥ ${MIN.toFixed(3)} (≤ 1.1× the cost)`, min: MIN }
  if (made.status !== 201) { targetLine({ ...subject, note: `skipped: POST /api-keys answered ${made.status}: ${(await made.text()).slice(0, 200)}` }, NaN); return }
  const key = { authorization: `Bearer ${(await made.json() as { key: string }).key}` }
  const docId = seeded.ownDocIds[Math.floor(seeded.ownDocIds.length / 2)]!
  const p = await probe(`${server.base}/documents/${docId}`, { headers: key }, 200)
  if (!p.ok) { targetLine({ ...subject, note: p.why }, NaN); return }
  const targets: LoadTarget[] = [
    { name: JWT, path: `/documents/${docId}`, headers: jwt },
    { name: KEY, path: `/documents/${docId}`, headers: key },
  ]
  log(`read-apikey: ${ROUNDS} rounds x ${SECONDS}s, ${CONNECTIONS} connections`)
  const res = await alternate(server.base, targets, { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, pid: server.pid })
  const rows = targets.map(t => rowFor(t.name, res.get(t.name)!))
  sections.push(`### Reads with an API key\n\nThe same document, the same user (an editor), alternated within each round: once with a JWT access token, once with an API key scoped documents:read. ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s.\n\n${table(rows)}`)
  const ratio = ratioOf(res.get(KEY)!.map(r => r.rps), res.get(JWT)!.map(r => r.rps))
  const cost = cpuRatio(res.get(KEY)!, res.get(JWT)!)
  targetLine({ ...subject, ratio, note: `${fmt(rows[1]!.rps.median)} vs ${fmt(rows[0]!.rps.median)} req/s; server CPU per request ${fmt(rows[1]!.cpuMs, 3)} vs ${fmt(rows[0]!.cpuMs, 3)} ms (CPU-cost ratio ${fmt(cost.median, 2)}); p50 ${fmt(rows[1]!.p50, 1)} vs ${fmt(rows[0]!.p50, 1)} ms, p99 ${fmt(rows[1]!.p99, 1)} vs ${fmt(rows[0]!.p99, 1)} ms` }, ratio.median)
}

export const readApiKey: Scenario = { name: 'read-apikey', server: 'local', run }
