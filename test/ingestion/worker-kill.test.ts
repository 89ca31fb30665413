import { test } from 'tap'
import type { ServerResponse } from 'node:http'
import { build, createUser } from '../helper.js'
import { startWorker } from '../helpers/processes.js'
import { createDocument, scriptedBackend, json, waitForStatus, eventually } from './helpers.js'

test('SIGKILL of the worker mid-dispatch: the ingestion is picked up again and finishes', async (t) => {
  const held: ServerResponse[] = []
  const backend = await scriptedBackend((req, n, res) => {
    if (n === 1) { held.push(res); return } // the first worker dies while we hold its request
    json(res, 200, { status: 'succeeded', result: { n, key: req.headers['idempotency-key'] } })
  })
  t.teardown(backend.close)
  const app = await build(t, { INGESTION_URL: backend.url })
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)

  const worker = async () => await startWorker(t, app.config, { INGESTION_TIMEOUT_MS: '60000', WORKER_LOCK_MS: '1000' })

  const first = await worker()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(res.statusCode, 202)
  const id = res.json().id
  // generous: a worker process compiled by tsx on a loaded machine takes a while to take its first job
  await eventually(async () => backend.requests.length === 1, 60000)
  t.equal((await waitForStatus(app, ed.headers, id, ['running'], 60_000)).status, 'running', 'running while the backend holds the request')

  await first.stop('SIGKILL')
  await worker()
  const ing = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'], 120_000)
  t.equal(ing.status, 'succeeded')
  t.equal(backend.requests.length, 2, 'sent again after the crash')
  t.same(ing.result, { n: 2, key: id }, 'same Idempotency-Key on the re-sent request')
  // Seen once under the full suite: attempts 1 with both requests made; the timeline says which attempt went uncounted.
  const timeline = (ing.events as Array<{ type: string, message: string }>).map(e => `${e.type}: ${e.message}`).join(' | ')
  t.equal(ing.attempts, 2, 'both attempts counted', { timeline })
  for (const r of held) r.destroy()
})
