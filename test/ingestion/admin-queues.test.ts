import { test } from 'tap'
import { build, createUser, assertErrorShape } from '../helper.js'
import { startWorkers } from '../../src/worker-runner.js'
import { createDocument, eventually } from './helpers.js'
import { QUEUE_NAMES } from '../../src/jobs/index.js'

test('admin job control: counts, list by state, detail, retry, delete; jobs:manage only', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  const ing = (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })).json()

  assertErrorShape(t, await app.inject({ method: 'GET', url: '/admin/queues', headers: ed.headers }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/admin/queues' }), 401, 'unauthorized')
  let res = await app.inject({ method: 'GET', url: '/admin/queues', headers: admin.headers })
  t.equal(res.statusCode, 200)
  t.same(res.json().map((q: { name: string }) => q.name), [...QUEUE_NAMES])
  const ingestionQueue = res.json().find((q: { name: string }) => q.name === 'ingestion')
  t.same(Object.keys(ingestionQueue.counts).sort(), ['active', 'completed', 'delayed', 'failed', 'paused', 'waiting'])
  t.ok(ingestionQueue.counts.waiting >= 1, 'the dispatch job waits (no worker here)')

  res = await app.inject({ method: 'GET', url: '/admin/queues/ingestion/jobs?state=waiting', headers: admin.headers })
  t.equal(res.statusCode, 200)
  t.ok(res.json().items.some((j: { id: string }) => j.id === ing.id), 'the job id is the ingestion id')
  res = await app.inject({ method: 'GET', url: '/admin/queues/ingestion/jobs?limit=100', headers: admin.headers })
  t.match(res.json().items.find((j: { id: string }) => j.id === ing.id), { state: 'waiting' }, 'without state: jobs in any state, each with its state')
  const stamps = res.json().items.map((j: { createdAt: string }) => j.createdAt)
  t.same(stamps, [...stamps].sort().reverse(), 'newest first')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/admin/queues/nope/jobs', headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/admin/queues/ingestion/jobs?state=weird', headers: admin.headers }), 400, 'validation_failed')
  res = await app.inject({ method: 'GET', url: `/admin/queues/ingestion/jobs/${ing.id}`, headers: admin.headers })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: ing.id, name: 'ingestion-dispatch', queue: 'ingestion', state: 'waiting', data: { ingestionId: ing.id }, attempts: app.config.INGESTION_MAX_ATTEMPTS })
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/admin/queues/ingestion/jobs/unknown', headers: admin.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/admin/queues/ingestion/jobs/${ing.id}/retry`, headers: admin.headers }), 409, 'invalid_job_state')
  res = await app.inject({ method: 'DELETE', url: `/admin/queues/ingestion/jobs/${ing.id}`, headers: admin.headers })
  t.equal(res.statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'GET', url: `/admin/queues/ingestion/jobs/${ing.id}`, headers: admin.headers }), 404, 'not_found')

  // a failed job on another queue: listed, retried
  const job = await app.queues.cleanup.add('no-such-processor', { x: 1 }, { attempts: 1 })
  const workers = await startWorkers(app, ['cleanup'])
  t.teardown(workers.close)
  await eventually(async () => await job.isFailed())
  res = await app.inject({ method: 'GET', url: '/admin/queues/cleanup/jobs?state=failed&limit=5', headers: admin.headers })
  const failed = res.json().items.find((j: { id: string }) => j.id === job.id)
  t.match(failed, { state: 'failed', failedReason: /no processor/ })
  res = await app.inject({ method: 'POST', url: `/admin/queues/cleanup/jobs/${job.id!}/retry`, headers: admin.headers })
  t.equal(res.statusCode, 200)
  await eventually(async () => (await app.queues.cleanup.getJob(job.id!))?.attemptsMade === 2 || (await job.isFailed() && (await app.queues.cleanup.getJob(job.id!))!.attemptsStarted >= 2))
  t.pass('the job ran again')
})

test('internal schedules are listed apart: not in the counts, not in the default job list', async (t) => {
  const app = await build(t, { INGESTION_RECOVERY_INTERVAL_MS: 30_000, THUMBNAIL_SWEEP_INTERVAL_MS: 300_000 })
  const admin = await createUser(app, 'admin')
  const workers = await startWorkers(app, ['ingestion', 'cleanup'])
  t.teardown(workers.close)
  // every schedule's next run sits delayed once its first run is done
  await eventually(async () => (await app.queues.cleanup.getDelayed()).filter(j => j.repeatJobKey !== undefined).length === 6)
  await eventually(async () => (await app.queues.ingestion.getDelayed()).some(j => j.repeatJobKey !== undefined))

  const res = await app.inject({ method: 'GET', url: '/admin/queues', headers: admin.headers })
  t.equal(res.statusCode, 200)
  const cleanup = res.json().find((q: { name: string }) => q.name === 'cleanup')
  t.same(cleanup.schedules.map((s: { id: string }) => s.id).sort(), ['audit-purge-hourly', 'storage-reconcile-daily', 'thumbnail-sweep', 'trash-purge-hourly', 'uploads-sweep', 'webhook-purge-hourly'])
  t.equal(cleanup.counts.delayed + cleanup.counts.waiting, 0, 'the pending runs of the schedules are not counted as jobs')
  t.equal(cleanup.counts.completed, 0, 'finished runs of schedules are not kept')
  // (the ingestion queue may hold real jobs here: its recovery sweep re-enqueues other test files' rows)
  const ingestion = res.json().find((q: { name: string }) => q.name === 'ingestion')
  t.match(ingestion.schedules, [{ id: 'ingestion-recovery', job: 'ingestion-recovery', every: 30000, next: String }])

  const names = async (url: string): Promise<string[]> => (await app.inject({ method: 'GET', url, headers: admin.headers })).json().items.map((j: { name: string }) => j.name)
  t.same(await names('/admin/queues/cleanup/jobs?limit=100'), [], 'no run of a schedule in the default list')
  t.same(await names('/admin/queues/cleanup/jobs?state=delayed'), [], 'nor by state')
  t.notOk((await names('/admin/queues/ingestion/jobs?limit=100')).includes('ingestion-recovery'))
  t.equal((await names('/admin/queues/cleanup/jobs?state=delayed&internal=true')).length, cleanup.schedules.length, 'internal=true shows them')
})
