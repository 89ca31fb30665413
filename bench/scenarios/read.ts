/** Reads: GET /documents/:id and the listing against hello, with the cost ladder and the bare-Fastify floors. */
import { fmt, summarize, type LoadTarget, type Summary } from '../lib.js'
import { alternate, cpuRatio, log, probe, ratioOf, rowFor, sections, targetLine, type Ctx, type Scenario } from '../runner/harness.js'
import { CONNECTIONS, ROUNDS, SECONDS, cpuCount } from '../runner/options.js'

const FLOOR_GET = 'bare Fastify + GET /documents/:id\'s own work (JWT, revocation check, statement, access rule)'
const FLOOR_LIST = 'bare Fastify + the list\'s own work (JWT, revocation check, statement)'

async function run (ctx: Ctx): Promise<void> {
  const { server, seeded, token } = ctx
  const auth = { authorization: `Bearer ${token}` }
  const docId = seeded.ownDocIds[Math.floor(seeded.ownDocIds.length / 2)]!
  const getDoc = await probe(`${server.base}/documents/${docId}`, { headers: auth }, 200)
  const list = await probe(`${server.base}/documents?limit=20`, { headers: auth }, 200)
  const bareBase = `http://127.0.0.1:${String(server.ready.barePort)}`
  const targets: LoadTarget[] = [
    { name: 'bare Fastify hello (no plugins)', base: bareBase, path: '/hello' },
    { name: 'bare Fastify + one MySQL row (raw mysql2, no auth)', base: bareBase, path: `/row/${docId}` },
    { name: FLOOR_GET, base: bareBase, path: `/floor/documents/${docId}`, headers: auth },
    { name: FLOOR_LIST, base: bareBase, path: '/floor/documents', headers: auth },
    { name: 'hello', path: '/__bench/hello' },
    { name: 'hello (no rate limit)', path: '/__bench/hello-no-rl' },
    { name: 'JWT verify only', path: '/__bench/jwt', headers: auth },
    { name: '+ session check (auth hook)', path: '/__bench/session', headers: auth },
    { name: '+ DB read by primary key', path: `/__bench/pk/${docId}`, headers: auth },
    { name: '+ DB read by primary key (prepared query)', path: `/__bench/pk-prepared/${docId}`, headers: auth },
    { name: '+ DB read by primary key (raw mysql2)', path: `/__bench/pk-raw/${docId}`, headers: auth },
  ]
  if (getDoc.ok) targets.push({ name: 'GET /documents/:id (full route)', path: `/documents/${docId}`, headers: auth })
  if (list.ok) targets.push({ name: 'GET /documents?limit=20', path: '/documents?limit=20', headers: auth })
  log(`read: ${targets.length} targets, ${ROUNDS} rounds x ${SECONDS}s, ${CONNECTIONS} connections`)
  const res = await alternate(server.base, targets, { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, pid: server.pid })
  const BARE = 'bare Fastify hello (no plugins)'
  const hello = res.get('hello')!.map(r => r.rps)
  const bareHello = res.get(BARE)!.map(r => r.rps)
  const bareRow = ratioOf(res.get('bare Fastify + one MySQL row (raw mysql2, no auth)')!.map(r => r.rps), bareHello)
  const rows = targets.map(t => rowFor(t.name, res.get(t.name)!))
  const withRatio = rows.map(r => ({ ...r, ratio: ratioOf(res.get(r.label)!.map(x => x.rps), hello), bare: ratioOf(res.get(r.label)!.map(x => x.rps), bareHello) }))
  const md = ['| target | req/s median | min | max | p50 ms | p99 ms | server CPU % | server CPU ms/req | MySQL CPU ms/req | machine busy ms/req | vs hello: median (min–max) | vs bare Fastify hello | notes |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...withRatio.map(r => `| ${r.label} | ${fmt(r.rps.median)} | ${fmt(r.rps.min)} | ${fmt(r.rps.max)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpu)} | ${fmt(r.cpuMs, 3)} | ${fmt(r.mysqlMs, 2)} | ${fmt(r.machineMs, 2)} | ${fmt(r.ratio.median, 2)} (${fmt(r.ratio.min, 2)}–${fmt(r.ratio.max, 2)}) | ${fmt(r.bare.median, 2)} (${fmt(r.bare.min, 2)}–${fmt(r.bare.max, 2)}) | ${r.notes} |`)]
  sections.push(`### Reads and the cost ladder\n\nSeeded: ${seeded.documents} documents (${seeded.internal} internal, ${seeded.shares} shares), ${seeded.userIds.length} users; the client is an editor owning ${seeded.ownDocIds.length} of them. ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per target, targets alternated within each round.\n\n${md.join('\n')}`)
  const add = (name: string, subj: string, probeRes: { ok: boolean, why: string }, min: number, floorName: string): void => {
    if (!probeRes.ok) { targetLine({ scenario: name, subject: subj, baseline: 'hello', target: `≥ ${min.toFixed(2)}`, note: probeRes.why, min }, NaN); return }
    const ratio = ratioOf(res.get(subj)!.map(x => x.rps), hello)
    const row = withRatio.find(r => r.label === subj)!
    const cr = cpuRatio(res.get(subj)!, res.get('hello')!)
    const crBare = cpuRatio(res.get(subj)!, res.get(BARE)!)
    // What the whole machine can give the route: its busy CPU per request over every process
    // (server, MySQL, Redis, kernel), less the load generator's own, against the cores there are.
    const ceiling = cpuCount() * 1000 / (row.machineMs - row.genMs)
    const ceilingText = `the machine's ceiling for the route: ${cpuCount()} cores × 1000 / ${fmt(row.machineMs - row.genMs, 2)} busy ms per request (${fmt(row.machineMs, 2)} on the whole box less the load generator's own ${fmt(row.genMs, 2)}) = ${fmt(ceiling)}/s, and its server core's: 1000 / ${fmt(row.cpuMs, 3)} = ${fmt(1000 / row.cpuMs)}/s, against the ${fmt(min * summarize(hello).median)}/s that ${min.toFixed(2)} of hello's median asks`
    targetLine({ scenario: name, subject: subj, baseline: 'hello', target: `≥ ${min.toFixed(2)}`, ratio, note: `${fmt(row.rps.median)} vs ${fmt(summarize(hello).median)} req/s; CPU-cost ratio ${fmt(cr.median, 2)} (${fmt(row.cpuMs, 2)} vs ${fmt(rowFor('hello', res.get('hello')!).cpuMs, 2)} ms/req); against a bare Fastify hello (no plugins, ${fmt(summarize(bareHello).median)} req/s): ${fmt(row.bare.median, 2)}, CPU-cost ${fmt(crBare.median, 2)}, where a bare route reading one MySQL row reaches ${fmt(bareRow.median, 2)} and the route's own work on the bare instance (no hook) ${((f: Summary) => `${fmt(f.median, 2)} (${fmt(f.min, 2)}–${fmt(f.max, 2)})`)(ratioOf(res.get(floorName)!.map(x => x.rps), bareHello))}; whole machine ${fmt(row.machineMs, 2)} vs ${fmt(rowFor('hello', res.get('hello')!).machineMs, 2)} busy ms/req, MySQL ${fmt(row.mysqlMs, 2)}; ${ceilingText}; p50 ${fmt(row.p50, 1)} ms, p99 ${fmt(row.p99, 1)} ms${row.notes !== '' ? '; ' + row.notes : ''}`, min }, ratio.median)
  }
  add('authenticated GET /documents/:id', 'GET /documents/:id (full route)', getDoc, 0.30, FLOOR_GET)
  add('authenticated GET /documents?limit=20 (100k docs, 1k users)', 'GET /documents?limit=20', list, 0.20, FLOOR_LIST)
}

export const read: Scenario = { name: 'read', server: 'local', run }
