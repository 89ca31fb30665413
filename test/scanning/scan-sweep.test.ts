// issue 24: a document left in `scanning` without a live scan job is queued again by the sweep;
// the scan-retry backoff doubles and is capped.
import t from 'tap'
import type { Job } from 'bullmq'
import { insertDocument } from '../../src/domain/documents.js'
import { backoffStrategy } from '../../src/jobs/backoff.js'
import { scanSweep, SCAN_SWEEP_GRACE_MS } from '../../src/jobs/document-scan.js'
import { newId } from '../../src/lib/ids.js'
import { build, createUser } from '../helper.js'

t.test('the scan sweep queues again a scanning document whose job is gone, once', async (t) => {
  // No worker here: the jobs are only looked at (the sweep sees every scanning row of the database).
  const app = await build(t, { CLAMD_URL: 'tcp://127.0.0.1:7319' })
  const owner = await createUser(app, 'editor')
  const id = newId()
  const row = await insertDocument(app.db, { id, ownerId: owner.id, title: 'lost scan', description: null, filename: 'f.txt', mimeType: 'text/plain', size: 1, sha256: '0'.repeat(64), visibility: 'private', tags: [] }, { scan: true })
  t.equal(row.status, 'scanning', 'inserted waiting for its scan, and no job was queued')
  const later = { data: { now: new Date(Date.now() + SCAN_SWEEP_GRACE_MS + 60_000).toISOString() } } as Job<{ now?: string }>

  const early = await scanSweep.process(app, { data: {} } as Job<{ now?: string }>) as { requeued: number }
  t.equal(await app.queues.media.getJob(`scan-${id}`), undefined, 'a fresh document is left to its own job')
  t.type(early.requeued, 'number')

  await scanSweep.process(app, later)
  const job = await app.queues.media.getJob(`scan-${id}`)
  t.ok(job, 'queued again')
  t.same(job?.data, { documentId: id })
  await scanSweep.process(app, later)
  t.equal((await app.queues.media.getJobs(['waiting'])).filter(j => j.id === `scan-${id}`).length, 1, 'a live job is not doubled')
})

t.test('scan-retry backoff: doubles from SCAN_RETRY_MS, capped at SCAN_RETRY_MAX_MS, with jitter below', async (t) => {
  const strategy = backoffStrategy({ SCAN_RETRY_MS: 1000, SCAN_RETRY_MAX_MS: 60_000 })
  const at = (n: number) => strategy(n, 'scan-retry') as number
  t.ok(at(1) >= 750 && at(1) <= 1000)
  t.ok(at(3) >= 3000 && at(3) <= 4000)
  for (const n of [7, 50, 999_999]) t.ok(at(n) >= 45_000 && at(n) <= 60_000, `attempt ${n} waits at most the cap`)
  t.throws(() => strategy(1, 'other'), /unknown backoff/)
})
