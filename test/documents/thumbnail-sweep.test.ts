// A thumbnail job lost after its document went `processing` (a crash before the enqueue, Redis down
// or restarted empty) left the document `processing` for good. The thumbnail sweep queues it again,
// with the job id of the document's current content version: never a second live job.
import t, { type Test } from 'tap'
import type { Job } from 'bullmq'
import sharp from 'sharp'
import type { FastifyInstance } from 'fastify'
import { thumbnailSweep, THUMBNAIL_SWEEP_GRACE_MS } from '../../src/jobs/thumbnail-sweep.js'
import { originalKey, thumbnailKey } from '../../src/domain/documents.js'
import { startWorkers } from '../../src/worker-runner.js'
import { createUser, privateDatabase, type TestUser } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { buildWith, multipart, PNG_RED, upload } from './helpers.js'

const sweep = async (app: FastifyInstance, now?: Date): Promise<{ requeued: number }> =>
  await thumbnailSweep.process(app, { data: now === undefined ? {} : { now: now.toISOString() } } as Job<{ now?: string }>) as { requeued: number }

/** An image document whose thumbnail job Redis then loses. */
async function lostImage (t: Test, app: FastifyInstance, user: TestUser): Promise<string> {
  const res = await upload(app, user.headers, { filename: 'red.png', contentType: 'image/png', data: PNG_RED })
  t.equal(res.statusCode, 201)
  const doc = res.json() as { id: string, status: string }
  t.equal(doc.status, 'processing')
  const job = await app.queues.media.getJob(`thumbnail-${doc.id}`)
  t.ok(job, 'its thumbnail job was queued')
  await job!.remove()
  return doc.id
}

t.test('a processing document whose thumbnail job was lost gets it again, per version, once; the worker finishes it', async (t) => {
  // A database of its own: the sweep takes every processing row of its database, and a worker runs here.
  const app = await buildWith(t, 'local', { DATABASE_URL: await privateDatabase('thumbsweep', t) })
  const ed = await createUser(app, 'editor')
  const id = await lostImage(t, app, ed)
  const later = new Date(Date.now() + THUMBNAIL_SWEEP_GRACE_MS + 60_000)

  t.same(await sweep(app), { requeued: 0 }, 'a document processing for less than the grace is left alone')
  t.equal(await app.queues.media.getJob(`thumbnail-${id}`), undefined)
  t.same(await sweep(app, later), { requeued: 1 })
  t.same((await app.queues.media.getJob(`thumbnail-${id}`))?.data, { documentId: id }, 'queued again, as the upload queues it')
  t.same(await sweep(app, later), { requeued: 0 }, 'a live job is not doubled')

  // A new image version, its job lost too: the sweep queues the current version's job.
  const png2x2 = await sharp({ create: { width: 2, height: 2, channels: 3, background: 'blue' } }).png().toBuffer()
  const body = multipart({ filename: 'v2.png', contentType: 'image/png', data: png2x2 })
  const v2 = await app.inject({ method: 'POST', url: `/documents/${id}/versions`, headers: { ...ed.headers, ...body.headers }, payload: body.payload })
  t.equal(v2.statusCode, 201, v2.body)
  await (await app.queues.media.getJob(`thumbnail-${id}-v2`))?.remove()
  t.same(await sweep(app, later), { requeued: 1 }, 'the version 2 job; version 1\'s is still waiting')
  t.same((await app.queues.media.getJob(`thumbnail-${id}-v2`))?.data, { documentId: id, version: 2 })

  // A second document whose original is gone as well: the job ends it as failed (no endless retries).
  const missing = await lostImage(t, app, ed)
  await app.storage.delete(originalKey(missing))
  t.same(await sweep(app, later), { requeued: 1 })

  const running = await startWorkers(app, ['media'])
  t.teardown(async () => await running.close())
  const settled = async (docId: string) => await eventually(async () => {
    const d = (await app.inject({ url: `/documents/${docId}`, headers: ed.headers })).json()
    return d.status !== 'processing' ? d : null
  }, 60_000)
  const done = await settled(id)
  t.equal(done.status, 'ready', 'the lost thumbnail was made')
  t.same(done.thumbnail, { width: 2, height: 2 }, 'of version 2')
  t.ok(await app.storage.head(thumbnailKey(id, 2)), 'version 2\'s thumbnail')
  t.equal(await app.storage.head(thumbnailKey(id, 1)), null, 'none for version 1 (no longer current when its job ran)')
  const failed = await settled(missing)
  t.equal(failed.status, 'failed')
  t.match(failed.error, /original object is missing/)
  t.same(await sweep(app, later), { requeued: 0 }, 'nothing left processing')
})
