import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { build, createUser } from '../helper.js'
import { startWorker } from '../helpers/processes.js'
import { ingestions } from '../../drizzle/schema/index.js'
import { createDocument, eventually, waitForStatus } from './helpers.js'
import { addVersion, indexBackend, indexEventually } from './index-helpers.js'

test('v1 -> v2 -> v3 with the worker SIGKILLed mid-sequence and the backend answering 5xx: the same end state', async (t) => {
  const backend = await indexBackend()
  t.teardown(backend.close)
  const app = await build(t, { INGESTION_URL: backend.url })
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)

  const worker = async () => await startWorker(t, app.config, { INGESTION_TIMEOUT_MS: '60000', INGESTION_BACKOFF_MS: '50', INGESTION_MAX_ATTEMPTS: '10', WORKER_LOCK_MS: '1000' })

  const first = await worker()
  backend.pause()
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal(res.statusCode, 202)
  await waitForStatus(app, ed.headers, res.json().id, ['running'], 60000)
  await addVersion(app, doc.id, ed.id, 'v2')
  await addVersion(app, doc.id, ed.id, 'v3')
  await first.stop('SIGKILL')
  // the first worker's request dies with it; the next answers are 5xx for a while
  backend.setFailures(2)
  await worker()
  backend.resume()
  const rows = await eventually(async () => {
    const r = await app.db.select().from(ingestions).where(eq(ingestions.documentId, doc.id)).orderBy(ingestions.id)
    return r.length === 3 && r.every(x => x.status !== 'queued' && x.status !== 'running') ? r : null
  }, 120000, 200)
  t.same(rows.map(r => [r.documentVersion, r.status]), [[1, 'succeeded'], [2, 'superseded'], [3, 'succeeded']])
  t.equal(backend.held.get(doc.id), 3, 'the backend ends holding v3')
  const versions = backend.sent.filter(s => s.documentId === doc.id).map(s => s.version)
  t.notOk(versions.includes(2), 'v2 never sent')
  t.equal(versions[versions.length - 1], 3, 'v3 last: nothing older was sent after it')
  await indexEventually(app, ed.headers, doc.id, { state: 'indexed', version: 3 })
})
