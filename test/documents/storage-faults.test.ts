import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eq, inArray } from 'drizzle-orm'
import { Worker, type Job } from 'bullmq'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { FastifyInstance } from 'fastify'
import { documents, uploads } from '../../drizzle/schema/index.js'
import { S3Storage } from '../../src/storage/s3.js'
import { createRedis } from '../../src/redis.js'
import { originalKey } from '../../src/domain/documents.js'
import { stagingKey } from '../../src/domain/upload-staging.js'
import deleteObjects, { DELETE_OBJECTS_JOB } from '../../src/jobs/delete-objects.js'
import sweep, { SWEEP_GRACE_MS } from '../../src/jobs/uploads-sweep.js'
import storageReconcile, { RECONCILE_GRACE_MS } from '../../src/jobs/storage-reconcile.js'
import { insertUpload } from '../../src/domain/uploads.js'
import { newId } from '../../src/lib/ids.js'
import { createUser, privateDatabase } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { buildWith, multipart, storedFiles, upload } from './helpers.js'

async function objects (app: FastifyInstance): Promise<string[]> {
  if (app.storage instanceof S3Storage) {
    const res = await app.storage.client.send(new ListObjectsV2Command({ Bucket: app.storage.bucket }))
    return (res.Contents ?? []).map(o => o.Key ?? '').sort()
  }
  return storedFiles(app.config.STORAGE_DIR)
}

/** storage.put fails after 1 MB of the body (a disk that fills up mid-stream) while `failing` is set. */
function failingPuts (app: FastifyInstance) {
  const state = { failing: true, failedMidStream: 0 }
  const put = app.storage.put.bind(app.storage)
  app.storage.put = async (key, body, opts) => {
    if (!state.failing) return await put(key, body, opts)
    async function * failing () {
      let seen = 0
      for await (const c of body) {
        seen += (c as Buffer).length
        if (seen > 1024 * 1024) { state.failedMidStream++; throw new Error('disk on fire') }
        yield c as Buffer
      }
    }
    return await put(key, Readable.from(failing(), { objectMode: false }), opts)
  }
  return state
}

/** storage.delete fails (as an unreachable S3 or a read-only disk would) while `broken` is set. */
function breakableDeletes (app: FastifyInstance) {
  const state = { broken: true, attempts: [] as Array<{ key: string, failed: boolean }> }
  const del = app.storage.delete.bind(app.storage)
  app.storage.delete = async (key) => {
    state.attempts.push({ key, failed: state.broken })
    if (state.broken) throw new Error('storage unavailable')
    await del(key)
  }
  return state
}

/** A BullMQ worker on this app's cleanup queue that runs only the delete-objects job (no schedules). */
async function deleteObjectsWorker (t: { teardown: (fn: () => unknown) => void }, app: FastifyInstance): Promise<Worker> {
  const connection = createRedis(app.config.REDIS_URL, { maxRetriesPerRequest: null, enableOfflineQueue: true })
  const worker = new Worker('cleanup', async (job: Job) => {
    if (job.name !== DELETE_OBJECTS_JOB) throw new Error(`unexpected job ${job.name}`)
    return await deleteObjects.process(app, job as Job<{ keys: string[] }>)
  }, { connection, prefix: `${app.config.REDIS_PREFIX}:bull` })
  t.teardown(async () => { await worker.close(); connection.disconnect() })
  await worker.waitUntilReady()
  return worker
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: permanent delete while storage deletes fail -> row gone, the queued delete retries with backoff and removes the object once storage is back`, async (t) => {
    const app = await buildWith(t, driver)
    const ed = await createUser(app, 'editor')
    const content = randomBytes(64 * 1024)
    const res = await upload(app, ed.headers, { filename: 'data.bin', data: content })
    t.equal(res.statusCode, 201)
    const id = res.json().id as string
    const key = originalKey(id)
    t.same(await app.storage.head(key), { size: content.length }, 'the object exists before the delete')

    const storage = breakableDeletes(app)
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204, 'trashed')
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: ed.headers })).statusCode, 204, 'deleted for good')
    t.same(await app.db.select({ id: documents.id }).from(documents).where(eq(documents.id, id)), [], 'the row is gone')
    t.equal((await app.inject({ url: `/documents/${id}`, headers: ed.headers })).statusCode, 404)
    t.same(await app.storage.head(key), { size: content.length }, 'the object is still stored')

    const queued = await app.queues.cleanup.getJobs(['waiting'])
    t.equal(queued.length, 1, 'one job queued')
    const job = queued[0]!
    t.equal(job.name, DELETE_OBJECTS_JOB, 'a delete-objects job')
    t.ok((job.data as { keys: string[] }).keys.includes(key), 'for the original')
    const jobId = job.id!

    await deleteObjectsWorker(t, app)
    const failedOnce = async (attempts: number) => await eventually(async () => {
      const j = await app.queues.cleanup.getJob(jobId)
      return j !== undefined && j.attemptsMade === attempts && await j.getState() === 'delayed' ? j : null
    }, 15000, 50)
    const first = await failedOnce(1)
    t.equal(first.failedReason, 'storage unavailable')
    t.equal(first.delay, 5000, 'first retry after 5 s')
    // Skip the wait instead of sleeping through the backoff.
    await first.promote()
    const second = await failedOnce(2)
    t.equal(second.delay, 10000, 'then 10 s: exponential backoff')
    t.same(await app.storage.head(key), { size: content.length }, 'still stored while storage fails')

    storage.broken = false
    await second.promote()
    // State first: a job read before it completed would carry stale fields.
    const done = await eventually(async () => await app.queues.cleanup.getJobState(jobId) === 'completed' && await app.queues.cleanup.getJob(jobId), 15000, 50)
    t.equal(done.attemptsMade, 3, 'succeeded on the third attempt')
    t.equal(await app.storage.head(key), null, 'the object is deleted')
    t.same(await objects(app), [], 'nothing left in storage')
    const onOriginal = storage.attempts.filter(a => a.key === key)
    t.same(onOriginal.map(a => a.failed), [true, true, false], 'two failed deletes of the original, then one that worked')
  })
}

t.test('local: storage failing mid-upload to a pre-signed URL, then deletes failing during the sweep -> no orphan once the sweep succeeds', async (t) => {
  const app = await buildWith(t, 'local', { DATABASE_URL: await privateDatabase(`sf${randomBytes(4).toString('hex')}`, t) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const ed = await createUser(app, 'editor')
  const size = 4 * 1024 * 1024
  const content = randomBytes(size)

  const start = await app.inject({ method: 'POST', url: '/uploads', headers: ed.headers, payload: { filename: 'big.bin', mimeType: 'application/octet-stream', size } })
  t.equal(start.statusCode, 201)
  const ticket = start.json() as { uploadId: string, url: string, headers: Record<string, string> }
  const key = stagingKey(ticket.uploadId)
  const target = ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`)

  // The disk fails after 1 MB of the PUT.
  const disk = failingPuts(app)
  const broken = await fetch(target, { method: 'PUT', headers: ticket.headers, body: content })
  t.equal(broken.status, 500, 'the PUT fails')
  // The rest of the body is unread: the server closes the connection rather than leaving it stuck
  // until the keep-alive timeout (which also held up app.close() for 72 s).
  t.equal(broken.headers.get('connection'), 'close', 'the connection is closed after the error')
  t.equal(disk.failedMidStream, 1, 'it failed mid-stream')
  t.same(await objects(app), [], 'no object, no temp file after the failed PUT')

  // The client retries the PUT and then never completes the upload.
  disk.failing = false
  t.equal((await fetch(target, { method: 'PUT', headers: ticket.headers, body: content })).status, 200)
  t.same(await objects(app), [key], 'the bytes are stored, waiting for a complete that never comes')

  // Make this upload long expired.
  const longAgo = new Date('2001-01-01T00:00:00Z')
  await app.db.update(uploads).set({ expiresAt: longAgo }).where(eq(uploads.id, ticket.uploadId))
  const now = new Date(longAgo.getTime() + SWEEP_GRACE_MS + 1000).toISOString()
  const pending = async () => await app.db.select({ id: uploads.id }).from(uploads).where(eq(uploads.id, ticket.uploadId))

  const storage = breakableDeletes(app)
  await t.rejects(sweep.process(app, { data: { now } } as never), /storage unavailable/, 'the sweep fails while storage deletes fail')
  t.equal((await pending()).length, 1, 'the upload row is kept for the next sweep')
  t.same(await objects(app), [key], 'and so is the object')

  storage.broken = false
  t.same(await sweep.process(app, { data: { now } } as never), { swept: 1, strays: 0, released: 0 }, 'the next sweep succeeds')
  t.same(await pending(), [], 'upload row gone')
  t.same(await objects(app), [], 'no orphaned object')
  t.same(storage.attempts, [{ key, failed: true }, { key, failed: false }])
})

t.test('local: storage failing mid-stream of a multipart upload over a real socket -> 500, connection closed, no row, no object', async (t) => {
  const app = await buildWith(t, 'local')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const ed = await createUser(app, 'editor')
  const disk = failingPuts(app)
  const body = multipart({ filename: 'data.bin', data: randomBytes(8 * 1024 * 1024) })
  const res = await fetch(`http://127.0.0.1:${port}/documents`, { method: 'POST', headers: { ...ed.headers, ...body.headers }, body: body.payload })
  t.equal(res.status, 500)
  t.equal(disk.failedMidStream, 1, 'failed mid-stream')
  t.match(await res.json(), { statusCode: 500, code: 'internal_error' })
  // Before: keep-alive, the client stuck sending the unread rest, app.close() waiting 72 s for it.
  t.equal(res.headers.get('connection'), 'close', 'the connection is closed after the error')
  t.same(await app.db.select({ id: documents.id }).from(documents).where(eq(documents.ownerId, ed.id)), [], 'no row')
  t.same(await objects(app), [], 'no object, no temp file')
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 10000, 'the server closes promptly: no connection left hanging')
})

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: an object whose delete failed inline (queue down) and in storage is removed by the reconcile job after its grace period, and nothing else is`, async (t) => {
    const app = await buildWith(t, driver)
    const ed = await createUser(app, 'editor')
    const uploadDoc = async (name: string) => {
      const res = await upload(app, ed.headers, { filename: name, data: randomBytes(4096) })
      t.equal(res.statusCode, 201)
      return res.json().id as string
    }
    const kept = [await uploadDoc('a.bin'), await uploadDoc('b.bin')]
    const doomed = await uploadDoc('c.bin')
    // A pending pre-signed upload whose bytes arrived: referenced by its upload row.
    const pendingId = newId()
    await insertUpload(app.db, { id: pendingId, userId: ed.id, filename: 'p.bin', mimeType: 'application/octet-stream', size: 3, sha256: null, storageKey: originalKey(pendingId), expiresAt: new Date(Date.now() + 24 * 3600_000) })
    await app.storage.put(originalKey(pendingId), Readable.from([Buffer.from('abc')]))
    // Not a key Quire writes for documents: never touched.
    await app.storage.put('other/keep.txt', Readable.from([Buffer.from('mine')]))
    if (driver === 'local') {
      await mkdir(join(app.config.STORAGE_DIR, '.tmp'), { recursive: true })
      await writeFile(join(app.config.STORAGE_DIR, '.tmp', 'crashed.part'), 'half a write')
    }
    const expectedKept = [...kept.map(originalKey), originalKey(pendingId), 'other/keep.txt'].sort()

    // Redis refuses the delete-objects job, so the route deletes inline, and storage fails that too.
    const enqueue = app.enqueue
    app.enqueue = async () => { throw new Error('redis down') }
    const storage = breakableDeletes(app)
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doomed}`, headers: ed.headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doomed}?permanent=true`, headers: ed.headers })).statusCode, 204)
    app.enqueue = enqueue
    storage.broken = false
    t.same(await app.db.select({ id: documents.id }).from(documents).where(eq(documents.id, doomed)), [], 'row gone')
    t.ok(storage.attempts.some(a => a.key === originalKey(doomed) && a.failed), 'the inline delete was tried and failed')
    t.same(await app.storage.head(originalKey(doomed)), { size: 4096 }, 'the object is orphaned')
    t.same(await app.queues.cleanup.getJobCounts('waiting', 'delayed'), { waiting: 0, delayed: 0 }, 'and no job will delete it')

    const reconcile = async (at: Date) => await storageReconcile.process(app, { data: { now: at.toISOString() } } as never) as Record<string, unknown>
    t.match(await reconcile(new Date()), { deleted: 0 }, 'young orphans are left alone (an upload may still be writing its row)')
    t.same(await app.storage.head(originalKey(doomed)), { size: 4096 })

    const later = new Date(Date.now() + RECONCILE_GRACE_MS + 3600_000)
    t.match(await reconcile(later), { known: 3, unknown: 1, deleted: 1, ...(driver === 'local' ? { temps: 1 } : {}) })
    t.equal(await app.storage.head(originalKey(doomed)), null, 'the orphan is deleted')
    t.same(await objects(app), expectedKept, 'documents, the pending upload and foreign keys are kept; stale temp files go')

    // Storage that does not belong to this database (most old objects unknown): nothing is deleted.
    await app.db.delete(documents).where(inArray(documents.id, kept))
    await app.db.delete(uploads).where(eq(uploads.id, pendingId))
    t.match(await reconcile(later), { known: 0, unknown: 3, deleted: 0, refused: true }, 'refused')
    t.same(await objects(app), expectedKept, 'nothing deleted')
  })
}
