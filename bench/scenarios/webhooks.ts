/** Outbound webhooks (issue 22): document changes through the API, relayed from the outbox and delivered by a worker to an instant receiver. */
import { createServer } from 'node:http'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { newId } from '../../src/lib/ids.js'
import { newSigningSecret, secretBox } from '../../src/domain/webhooks/secrets.js'
import { fmt, load, procCpu, sleep, startChild, summarize } from '../lib.js'
import { ingestPath, log, probe, sections, serverEnv, targetLine, type Ctx, type Scenario } from '../runner/harness.js'
import { argv, CONNECTIONS, OUT_DIR, DATABASE_URL, E2E_INGESTIONS, here, jwtSecret, QUICK, REDIS_PREFIX, REDIS_URL, SERVER_CPU, WORKER_FLAGS } from '../runner/options.js'

async function run (ctx: Ctx): Promise<void> {
  const { server, seeded, token } = ctx
  const headers = { authorization: `Bearer ${token}` }
  const events = E2E_INGESTIONS
  const p = await probe(`${server.base}/documents/${seeded.ownDocIds[0]!}`, { method: 'PATCH', headers: { ...headers, 'content-type': 'application/json' }, body: '{"title":"probe"}' }, 200)
  if (!p.ok) { targetLine({ scenario: 'webhook deliveries (instant receiver)', subject: 'worker', baseline: '-', target: '≥ 1,000 events/s', note: p.why, min: 1000 }, NaN); return }
  // The instant receiver, in this process: counts distinct webhook-ids.
  const seen = new Set<string>()
  const receiver = createServer((req, res) => { req.resume(); req.on('end', () => { seen.add(String(req.headers['webhook-id'])); res.writeHead(204).end() }) })
  receiver.keepAliveTimeout = 60_000
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  const port = (receiver.address() as { port: number }).port
  const conn = await mysql.createConnection({ uri: DATABASE_URL, timezone: 'Z' })
  const queue = new Queue('webhooks', { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: `${REDIS_PREFIX}:bull` })
  const rounds = QUICK ? 2 : 3
  const rates: number[] = []
  const cpuMs: number[] = []
  try {
    const now = new Date()
    await conn.query('UPDATE webhook_events SET relayed_at = NOW(3) WHERE relayed_at IS NULL')
    await conn.query('INSERT INTO webhook_endpoints (id, url, description, events, secret, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [newId(), `http://127.0.0.1:${port}/hook`, 'bench', '["document.updated"]', secretBox(jwtSecret).seal(newSigningSecret()), 'active', now, now])
    const worker = await startChild('webhook worker', join(here, 'worker.ts'), {
      cpus: SERVER_CPU,
      env: serverEnv({ JWT_SECRET: jwtSecret, BENCH_WORKER_QUEUES: 'webhooks', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RELAY_INTERVAL_MS: '100' }),
      nodeArgs: [...WORKER_FLAGS, ...(argv.profile === true ? ['--cpu-prof', `--cpu-prof-dir=${join(OUT_DIR, 'worker-webhooks')}`] : [])],
    })
    for (let r = 0; r < rounds; r++) {
      await queue.pause()
      const before = seen.size
      const made = await load(server.base, { name: 'patch', method: 'PATCH', path: ingestPath(seeded.ownDocIds, '/documents/'), headers, body: JSON.stringify({ title: `round ${r}` }) }, { amount: events, connections: CONNECTIONS })
      const [[{ n }]] = await conn.query("SELECT COUNT(*) AS n FROM webhook_events WHERE relayed_at IS NULL AND type = 'document.updated'") as unknown as [[{ n: number }]]
      const cpu0 = procCpu(worker.pid)
      const t0 = process.hrtime.bigint()
      await queue.resume()
      const deadline = Date.now() + 120_000
      while (seen.size - before < Number(n) && Date.now() < deadline && worker.proc.exitCode === null) await sleep(10)
      const secs = Number(process.hrtime.bigint() - t0) / 1e9
      const got = seen.size - before
      rates.push(got / secs)
      cpuMs.push(1000 * (procCpu(worker.pid) - cpu0) / Math.max(1, got))
      log(`  round ${r + 1}/${rounds}: ${made.total} changes (${fmt(made.rps)}/s), ${n} events in the outbox, ${got} delivered in ${fmt(secs, 2)} s = ${fmt(got / secs)}/s (worker ${fmt(cpuMs.at(-1)!, 2)} CPU ms/event)`)
    }
    await worker.stop()
  } finally {
    await queue.close()
    await conn.end()
    receiver.closeAllConnections()
    receiver.close()
  }
  const s = summarize(rates)
  sections.push(`### Webhook deliveries\n\nOne worker process (webhooks queue only, defaults but WEBHOOK_RELAY_INTERVAL_MS=100, pinned to CPU ${SERVER_CPU}) and one endpoint subscribed to \`document.updated\`, an instant receiver (204) in this process. Per round: the queue paused (relay included), ${events} PATCHes through the API (each writes its event to the outbox in its transaction), the queue resumed; rate = distinct webhook-ids received / wall time from the resume (relay, delivery rows, jobs, signed POSTs, attempt logs). Rounds: ${rates.map(x => fmt(x)).join(', ')} events/s; worker ${fmt(summarize(cpuMs).median, 2)} CPU ms per event.`)
  targetLine({ scenario: 'webhook deliveries (instant receiver)', subject: 'worker', baseline: '-', target: '≥ 1,000 events/s', value: s, unit: '/s', note: `${events} document changes per round, one endpoint (WEBHOOK_ENDPOINT_CONCURRENCY default); worker ${fmt(summarize(cpuMs).median, 2)} CPU ms/event`, min: 1000 }, s.median)
}

export const webhooks: Scenario = { name: 'webhooks', server: 'local', run }
