import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { eq } from 'drizzle-orm'
import { startWorkers } from '../../src/worker-runner.js'
import { createUser } from '../helper.js'
import { documentVersions, ingestions } from '../../drizzle/schema/index.js'
import { addVersion, buildWith, multipart, objects, upload } from './helpers.js'
import { json, scriptedBackend, waitForStatus } from '../ingestion/helpers.js'

// Issue 20's "Tests must show": the same bytes as the current version add no version and start no
// ingestion (even for a document in the index, which a new version would re-ingest); restoring a
// 100 MB version copies it inside the storage, no byte of it through the API process.

const MB = 1024 * 1024

t.test('the same bytes again, on a document in the index: 200, no new version, no ingestion', async (t) => {
  const backend = await scriptedBackend((req, _n, res) => json(res, 200, { status: 'succeeded', result: { chunks: 1, version: req.body.document.version } }))
  t.teardown(backend.close)
  const app = await buildWith(t, 'local', { INGESTION_URL: backend.url })
  const workers = await startWorkers(app, ['ingestion'])
  t.teardown(async () => await workers.close())
  const ed = await createUser(app, 'editor')
  const up = await upload(app, ed.headers, { filename: 'a.txt', contentType: 'text/plain', data: 'first bytes\n' })
  const id = up.json().id as string
  const first = await app.inject({ method: 'POST', url: `/documents/${id}/ingestions`, headers: ed.headers, payload: {} })
  t.equal((await waitForStatus(app, ed.headers, first.json().id, ['succeeded'], 60_000)).status, 'succeeded')
  t.equal((await addVersion(app, ed, id, 'second bytes\n')).statusCode, 201, 'a new version of an indexed document...')
  const rowsOf = async () => await app.db.select().from(ingestions).where(eq(ingestions.documentId, id))
  t.equal((await rowsOf()).length, 2, '...is re-ingested')
  const before = { rows: (await rowsOf()).length, objects: await objects(app), versions: (await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id))).length }

  const same = await addVersion(app, ed, id, 'second bytes\n', {}, 'renamed.txt')
  t.equal(same.statusCode, 200, same.body)
  t.match(same.json(), { number: 2, current: true, filename: 'v.txt' }, 'the current version, as it was')
  const sameUp = await app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: ed.headers, payload: { filename: 'again.txt', mimeType: 'text/plain', size: 13 } })
  t.equal(sameUp.statusCode, 201, sameUp.body)
  const ticket = sameUp.json() as { uploadId: string, url: string, headers: Record<string, string> }
  const target = new URL(ticket.url)
  const token = target.pathname + target.search
  t.equal((await app.inject({ method: 'PUT', url: token, headers: ticket.headers, payload: 'second bytes\n' })).statusCode, 200)
  const done = await app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: ed.headers })
  t.equal(done.statusCode, 200, done.body)
  t.match(done.json(), { number: 2 })
  t.equal((await rowsOf()).length, before.rows, 'no ingestion, by either flow')
  t.equal((await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id))).length, before.versions, 'no version')
  t.same(await objects(app), before.objects, 'nothing stored')
})

/** A multipart body of `size` pseudo-random bytes, streamed (never all in memory), and their sha256. */
function bigMultipart (size: number): { body: Readable, headers: Record<string, string>, sha256: string } {
  const chunk = randomBytes(MB)
  const hash = createHash('sha256')
  for (let sent = 0; sent < size; sent += MB) hash.update(chunk.subarray(0, Math.min(MB, size - sent)))
  const shell = multipart({ filename: 'big.bin', contentType: 'application/octet-stream', data: 'X' })
  const text = shell.payload.toString('latin1')
  const at = text.indexOf('\r\n\r\nX') + 4
  const head = shell.payload.subarray(0, at)
  const tail = shell.payload.subarray(at + 1)
  async function * parts (): AsyncGenerator<Buffer> {
    yield head
    for (let sent = 0; sent < size; sent += MB) yield chunk.subarray(0, Math.min(MB, size - sent))
    yield tail
  }
  return { body: Readable.from(parts()), headers: shell.headers, sha256: hash.digest('hex') }
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: restoring a 100 MB version moves no byte through the API process`, async (t) => {
    const app = await buildWith(t, driver)
    const ed = await createUser(app, 'editor')
    const size = 100 * MB
    const big = bigMultipart(size)
    const up = await app.inject({ method: 'POST', url: '/documents', headers: { ...ed.headers, ...big.headers }, payload: big.body })
    t.equal(up.statusCode, 201, up.body)
    const id = up.json().id as string
    t.equal(up.json().sha256, big.sha256)
    t.equal((await addVersion(app, ed, id, 'a small second version\n')).statusCode, 201)

    // Every storage call, and for S3 every command the client sends, during the restore.
    const calls: string[] = []
    const storage = app.storage as unknown as Record<string, unknown>
    const originals = new Map<string, unknown>()
    for (const name of ['put', 'get', 'head', 'delete', 'move', 'copy', 'presignGet', 'directDownloadUrl']) {
      const fn = storage[name]
      if (typeof fn !== 'function') continue
      originals.set(name, fn)
      storage[name] = async (...args: unknown[]) => { calls.push(`${name} ${String(args[0])}`); return await (fn as (...a: unknown[]) => Promise<unknown>).apply(app.storage, args) }
    }
    const commands: string[] = []
    const client = (app.storage as unknown as { client?: { send: (c: { constructor: { name: string } }) => Promise<unknown> } }).client
    const send = client?.send
    if (client !== undefined && send !== undefined) client.send = async (c) => { commands.push(c.constructor.name); return await send.call(client, c) }
    t.teardown(() => {
      for (const [name, fn] of originals) storage[name] = fn
      if (client !== undefined && send !== undefined) client.send = send
    })
    const rss0 = process.memoryUsage.rss()
    let peak = rss0
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 5)
    const restored = await app.inject({ method: 'POST', url: `/documents/${id}/versions/1/restore`, headers: ed.headers })
    clearInterval(sampler)
    t.equal(restored.statusCode, 201, restored.body)
    t.match(restored.json(), { number: 3, size, sha256: big.sha256, current: true })
    const [v1] = await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id)).orderBy(documentVersions.number)
    t.notOk(calls.some(c => c.startsWith('get ') || c.startsWith('put ')), `no get or put: ${calls.join(', ')}`)
    t.equal(calls.filter(c => c === `copy ${v1!.storageKey}`).length, 1, 'one server-side copy of version 1')
    if (driver === 's3') {
      t.ok(commands.includes('CopyObjectCommand'), `S3 CopyObject: ${commands.join(', ')}`)
      t.notOk(commands.some(c => /^(GetObject|PutObject|UploadPart|CreateMultipartUpload)Command$/.test(c)), 'no object read or written through the process')
    } else {
      // The in-process S3 emulator would count its own copy here; on local storage the copy is the kernel's.
      t.ok(peak - rss0 < 40 * MB, `RSS grew ${((peak - rss0) / MB).toFixed(1)} MB during the restore of ${size / MB} MB`)
    }
    t.comment(`${driver}: storage calls ${calls.join(', ')}; S3 commands ${commands.join(', ') || '-'}; RSS +${((peak - rss0) / MB).toFixed(1)} MB`)
    const head = await app.storage.head((await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id))).find(v => v.number === 3)!.storageKey)
    t.equal(head?.size, size, 'the copy is whole')
  })
}
