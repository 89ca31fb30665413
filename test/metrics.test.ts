import { test } from 'tap'
import { build, createUser } from './helper.js'
import { createDocument } from './ingestion/helpers.js'
import { ingestions } from '../drizzle/schema/index.js'
import { newId } from '../src/lib/ids.js'

test('GET /metrics exposes request, queue, ingestion, pool and event-loop metrics', async (t) => {
  const app = await build(t)
  await app.inject({ method: 'GET', url: '/health' })
  await app.inject({ method: 'GET', url: '/nope' })
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(String(res.headers['content-type']), /^text\/plain/)
  const body = res.body
  t.match(body, /quire_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 1/)
  t.match(body, /quire_http_request_duration_seconds_count\{method="GET",route="not_found",status="404"\} 1/)
  t.match(body, /quire_queue_jobs\{queue="ingestion",state="waiting"\} 0/)
  t.match(body, /quire_queue_jobs\{queue="media",state="failed"\} 0/)
  t.match(body, /quire_db_pool_connections\{state="total"\} \d+/)
  t.match(body, /quire_nodejs_eventloop_lag_p99_seconds/)
  t.match(body, /# TYPE quire_ingestions gauge/)
  t.match(body, /# TYPE quire_job_outcomes_total counter/)
})

/** The value of one sample line of the exposition, or null when absent. */
function sample (body: string, series: string): number | null {
  const line = body.split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? null : Number(line.slice(series.length + 1))
}

test('the ingestion, DB pool and event-loop metrics carry live values', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  // A finished ingestion, written directly: a queued one would be picked up by the recovery sweeps
  // that other test files run on the shared database.
  const now = new Date()
  await app.db.insert(ingestions).values({
    id: newId(), documentId: doc.id, status: 'succeeded', pipeline: 'default', options: {}, attempts: 1, requestedBy: ed.id, createdAt: now, updatedAt: now, finishedAt: now,
  })

  // Hold two pool connections: the pool gauges read mysql2 internals, which an upgrade could rename.
  const held = [await app.dbPool.getConnection(), await app.dbPool.getConnection()]
  let body = (await app.inject({ method: 'GET', url: '/metrics' })).body
  for (const c of held) c.release()
  t.ok((sample(body, 'quire_ingestions{status="succeeded"}') ?? 0) >= 1, 'the finished ingestion is counted')
  const total = sample(body, 'quire_db_pool_connections{state="total"}') ?? 0
  const busy = sample(body, 'quire_db_pool_connections{state="busy"}') ?? 0
  t.ok(busy >= 2, `busy connections seen (${busy})`)
  t.ok(total >= busy, `total (${total}) >= busy`)
  t.equal(sample(body, 'quire_db_pool_connections{state="idle"}'), total - busy)
  t.type(sample(body, 'quire_db_pool_connections{state="queued_requests"}'), 'number')

  // Block the event loop for a while: the lag histogram must see it. The block runs inside a timer
  // callback: Node's histogram is itself a timer, and a block in a promise continuation or an
  // immediate can end before that timer's next due time is computed (it then records a normal
  // interval, seen on loaded machines). Up to three tries all the same.
  let lagMax = 0
  for (let i = 0; i < 3 && lagMax < 0.2; i++) {
    await new Promise<void>(resolve => setTimeout(() => {
      const until = Date.now() + 300
      while (Date.now() < until) { /* busy */ }
      resolve()
    }, 5))
    await new Promise(resolve => setTimeout(resolve, 100))
    body = (await app.inject({ method: 'GET', url: '/metrics' })).body
    lagMax = sample(body, 'quire_nodejs_eventloop_lag_max_seconds') ?? 0
  }
  t.ok(lagMax >= 0.2, `event-loop lag max ${lagMax}s reflects the 300 ms block`)
  t.ok((sample(body, 'quire_db_pool_connections{state="busy"}') ?? 1) < busy, 'released connections are no longer busy')
})
