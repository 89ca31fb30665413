import { test } from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { QueueEvents } from 'bullmq'
import { buildWorkerApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { catalogue, jobIdOf, type JobName } from '../../src/jobs/catalogue.js'
import { processors } from '../../src/jobs/processors.js'
import { QUEUE_NAMES } from '../../src/jobs/types.js'
import { build, testConfig, TEST_PLUGIN_TIMEOUT } from '../helper.js'

const ROOT = new URL('../..', import.meta.url).pathname

test('the API process never loads sharp: it enqueues from the catalogue, only the worker imports processors', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import=tsx', 'test/jobs/api-modules.ts'], { cwd: ROOT, env: process.env, timeout: 90_000 })
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as { api: boolean, worker: boolean }
  t.equal(seen.api, false, 'the built API has not loaded sharp')
  t.equal(seen.worker, true, 'the worker\'s processors do (the check sees it)')
})

test('every catalogued job has a processor on its queue, and every processor a catalogue entry', async (t) => {
  for (const [name, spec] of Object.entries(catalogue)) {
    t.ok(QUEUE_NAMES.includes(spec.queue), `${name}: a known queue`)
    t.equal(processors[name as JobName].name, name, `${name}: its processor`)
    t.equal(processors[name as JobName].queue, spec.queue, `${name}: the processor's queue`)
  }
  t.same(Object.keys(processors).sort(), Object.keys(catalogue).sort())
  const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
  t.equal(jobIdOf('ingestion-dispatch', { ingestionId: id, requestId: null }), id, 'dispatch job id = ingestion id')
  t.equal(jobIdOf('ingestion-callback-timeout', { ingestionId: id }), `${id}.cb`)
  t.equal(jobIdOf('document-thumbnail', { documentId: id }), `thumbnail-${id}`)
  t.equal(jobIdOf('noop', {}), undefined)
})

test('enqueue is typed by the catalogue and refuses a payload that does not match its schema', async (t) => {
  const app = await build(t)
  // Compile-time checks (tsc runs over the tests): never called.
  const _typed = async (): Promise<void> => {
    // @ts-expect-error unknown job name
    await app.enqueue('document-thumbnial', { documentId: 'x' })
    // @ts-expect-error wrong payload for the job
    await app.enqueue('document-thumbnail', { id: 'x' })
    // @ts-expect-error missing payload field
    await app.enqueue('ingestion-dispatch', { ingestionId: 'x' })
  }
  t.type(_typed, 'function')
  await t.rejects(app.enqueue('noop', { echo: 42 } as never), /invalid payload for job noop: \/echo/)
  await t.rejects(app.enqueue('document-thumbnail', { documentId: 'NOT-AN-ID' }), /invalid payload for job document-thumbnail/)
  await t.rejects(app.enqueue('no-such-job' as never, {} as never), /unknown job no-such-job/)
  const id = await app.enqueue('delete-objects', { keys: [] })
  const job = await app.queues.cleanup.getJob(id)
  t.match(job?.opts, { attempts: 25, removeOnFail: false, removeOnComplete: { count: 10000 } }, 'the catalogue\'s options over JOB_RETENTION')
  await job?.remove()
})

test('a job whose payload does not match its schema fails at once, without retry, and is not processed', async (t) => {
  const config = testConfig()
  const app = await buildWorkerApp(config, { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  const open: { running?: Awaited<ReturnType<typeof startWorkers>>, events?: QueueEvents } = {}
  t.teardown(async () => { await open.events?.close(); await open.running?.close(); await app.close() })
  await app.ready()
  open.running = await startWorkers(app, ['cleanup'])
  const events = open.events = new QueueEvents('cleanup', { connection: { url: config.REDIS_URL }, prefix: `${config.REDIS_PREFIX}:bull` })
  await events.waitUntilReady()
  // Added raw (as an older release or a hand-written producer would): the typed enqueue would refuse it.
  const bad = await app.queues.cleanup.add('noop', { echo: 42 }, { attempts: 3, backoff: { type: 'fixed', delay: 10 } })
  await t.rejects(bad.waitUntilFinished(events, 10000), /invalid payload: \/echo/)
  const failed = await app.queues.cleanup.getJob(bad.id!)
  t.equal(await failed?.getState(), 'failed')
  t.equal(failed?.attemptsMade, 1, 'one attempt, no retry')
  t.equal(failed?.returnvalue ?? null, null, 'not processed')
  const good = await app.queues.cleanup.add('noop', { echo: 'ok' })
  t.match(await good.waitUntilFinished(events, 10000), { echo: 'ok' }, 'a valid payload runs')
})
