import t, { type Test } from 'tap'
import { buildApp } from '../../src/build.js'
import { startWorkers } from '../../src/worker-runner.js'
import { TEST_PLUGIN_TIMEOUT, createUser, testConfig } from '../helper.js'
import type { Config } from '../../src/config.js'
import { createDocument, freePort, json, scriptedBackend, waitForStatus } from './helpers.js'

// Issue 23: an ingestion that failed on the network says where it tried and which setting to check.

async function start (t: Test, overrides: Partial<Config>) {
  const app = await buildApp(testConfig({ INGESTION_BACKOFF_MS: 20, INGESTION_TIMEOUT_MS: 2000, ...overrides }), { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  const workers = await startWorkers(app, ['ingestion'])
  t.teardown(async () => { await workers.close(); await app.close() })
  await app.ready()
  const ed = await createUser(app, 'editor')
  const trigger = async (options: Record<string, unknown> = {}): Promise<string> => {
    const doc = await createDocument(app, ed.id)
    const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: { pipeline: 'test', options } })
    t.equal(res.statusCode, 202)
    return res.json().id as string
  }
  return { app, ed, trigger }
}

t.test('unreachable backend: the event and lastError name the URL (without its secrets) and INGESTION_URL', async (t) => {
  const port = await freePort() // nothing listens there
  const { app, ed, trigger } = await start(t, { INGESTION_URL: `http://svc:s3cret@127.0.0.1:${port}/ingest?token=abc`, INGESTION_MAX_ATTEMPTS: 2 })
  const ing = await waitForStatus(app, ed.headers, await trigger(), ['succeeded', 'failed'])
  t.equal(ing.status, 'failed')
  const expected = `could not reach the ingestion backend at http://127.0.0.1:${port}/ingest: ECONNREFUSED (check INGESTION_URL)`
  t.equal(ing.lastError, `gave up after 2 attempts: ${expected}`)
  const attempt = ing.events.find((e: { type: string }) => e.type === 'attempt')
  t.match(attempt.message, 'network error after ')
  t.ok(attempt.message.endsWith(expected), attempt.message)
  t.notMatch(JSON.stringify(ing), /s3cret|token=abc/, 'no credentials or query string echoed')
})

t.test('a backend that could not download the document or never called back: the message points at PUBLIC_URL', async (t) => {
  const backend = await scriptedBackend(async (req, _n, res) => {
    if (req.body.options?.mode === 'download') return json(res, 422, { status: 'failed', error: 'download refused with HTTP 403' })
    if (req.body.options?.mode === 'download503') return json(res, 503, { error: 'download failed: <urlopen error [Errno 111] Connection refused>' })
    json(res, 202, { status: 'accepted' })
  })
  t.teardown(backend.close)
  const publicUrl = `http://127.0.0.1:${await freePort()}`
  const { app, ed, trigger } = await start(t, { INGESTION_URL: backend.url, INGESTION_MAX_ATTEMPTS: 1, INGESTION_CALLBACK_TIMEOUT_MS: 500, PUBLIC_URL: publicUrl })

  const refused = await waitForStatus(app, ed.headers, await trigger({ mode: 'download' }), ['succeeded', 'failed'])
  t.equal(refused.lastError, `backend refused the request with 422: ${JSON.stringify({ status: 'failed', error: 'download refused with HTTP 403' })}` +
    ` (the backend downloads documents from PUBLIC_URL, ${publicUrl}: check that it can reach that address, or set PUBLIC_URL to one it can)`)
  const unreachable = await waitForStatus(app, ed.headers, await trigger({ mode: 'download503' }), ['succeeded', 'failed'])
  t.match(unreachable.lastError, /^gave up after 1 attempts: backend answered 503: .*download failed.* \(the backend downloads documents from PUBLIC_URL, /)

  const id = await trigger({ mode: 'silent' })
  const silent = await waitForStatus(app, ed.headers, id, ['succeeded', 'failed'])
  t.equal(silent.lastError, `no callback from the backend within 500 ms (INGESTION_CALLBACK_TIMEOUT_MS); it calls back to ${publicUrl}/ingestions/${id}/callback: check that it can reach PUBLIC_URL`)
})
