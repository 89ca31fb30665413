/** The ingestion trigger against a raw BullMQ queue.add, with the floors between them. */
import { fmt, type LoadTarget } from '../lib.js'
import { alternate, cpuRatio, ingestPath, log, probe, ratioOf, rowFor, sections, table, targetLine, type Ctx, type Scenario } from '../runner/harness.js'
import { CONNECTIONS, ROUNDS, SECONDS, cpuCount } from '../runner/options.js'

async function run (ctx: Ctx): Promise<void> {
  const { server, seeded, token } = ctx
  const headers = { authorization: `Bearer ${token}` }
  const p = await probe(`${server.base}/documents/${seeded.ownDocIds[0]!}/ingestions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' }, 202)
  if (!p.ok) { targetLine({ scenario: 'POST /documents/:id/ingestions', subject: 'trigger', baseline: 'raw queue.add', target: '≥ 0.50', note: p.why, min: 0.5 }, NaN); return }
  const targets: LoadTarget[] = [
    { name: 'raw BullMQ queue.add', method: 'POST', path: '/__bench/enqueue', body: '{}' },
    { name: 'POST /documents/:id/ingestions', method: 'POST', path: ingestPath(seeded.ownDocIds), headers, body: '{}' },
    // the floor under the trigger: what an authenticated enqueue costs before anything is written
    { name: 'floor: auth + queue.add', method: 'POST', path: '/__bench/enqueue-auth', headers, body: '{}' },
    { name: 'floor: auth + document check + queue.add', method: 'POST', path: ingestPath(seeded.ownDocIds, '/__bench/enqueue-doc/'), headers, body: '{}' },
  ]
  log(`ingest-post: ${ROUNDS} rounds x ${SECONDS}s, ${CONNECTIONS} connections`)
  const res = await alternate(server.base, targets, { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, pid: server.pid })
  const base = res.get(targets[0]!.name)!.map(r => r.rps)
  const subj = res.get(targets[1]!.name)!.map(r => r.rps)
  const rows = targets.map(t => rowFor(t.name, res.get(t.name)!))
  const floorRatios = targets.slice(2).map(t => `${t.name.replace('floor: ', '')} ${fmt(ratioOf(res.get(t.name)!.map(r => r.rps), base).median, 2)}`).join(', ')
  sections.push(`### Ingestion trigger vs raw queue.add\n\nNo worker runs during this scenario (jobs pile up in Redis). The trigger rotates over the client's ${seeded.ownDocIds.length} documents. The two "floor" routes (bench-only) add the trigger's steps to the bare add one by one without writing anything: their ratio to queue.add bounds what any trigger that authenticates and checks the document can reach (${floorRatios}).\n\n${table(rows)}`)
  const ratio = ratioOf(subj, base)
  const cri = cpuRatio(res.get(targets[1]!.name)!, res.get(targets[0]!.name)!)
  // What the whole machine can give the trigger: its busy CPU per trigger over every process
  // (server, MySQL, Redis, kernel), less the load generator's own, against the cores there are.
  const t = rows[1]!
  const ceiling = cpuCount() * 1000 / (t.machineMs - t.genMs)
  const ceilingText = `the machine's ceiling for the trigger: ${cpuCount()} cores × 1000 / ${fmt(t.machineMs - t.genMs, 2)} busy ms per trigger (${fmt(t.machineMs, 2)} on the whole box less the load generator's own ${fmt(t.genMs, 2)}) = ${fmt(ceiling)}/s, and its server core's: 1000 / ${fmt(t.cpuMs, 2)} = ${fmt(1000 / t.cpuMs)}/s, against the ${fmt(0.5 * rows[0]!.rps.median)}/s that 0.50 of queue.add's median asks`
  sections.push(`The trigger's server used ${fmt(t.cpu)} % of its core${t.cpu < 90 ? ' (it waits on MySQL more than it computes)' : ''}. ${ceilingText[0]!.toUpperCase()}${ceilingText.slice(1)}.`)
  targetLine({ scenario: 'POST /documents/:id/ingestions', subject: 'trigger', baseline: 'raw BullMQ queue.add', target: '≥ 0.50', ratio, note: `${fmt(rows[1]!.rps.median)} vs ${fmt(rows[0]!.rps.median)} req/s; CPU-cost ratio ${fmt(cri.median, 2)} (${fmt(rows[1]!.cpuMs, 2)} vs ${fmt(rows[0]!.cpuMs, 2)} ms/req); ${ceilingText}; p50 ${fmt(rows[1]!.p50, 1)} ms, p99 ${fmt(rows[1]!.p99, 1)} ms${rows[1]!.notes !== '' ? '; ' + rows[1]!.notes : ''}`, min: 0.5 }, ratio.median)
}

export const ingestPost: Scenario = { name: 'ingest-post', server: 'local', run }
