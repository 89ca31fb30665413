import t from 'tap'
import { eq } from 'drizzle-orm'
import type { Job } from 'bullmq'
import { assertErrorShape, createUser } from '../helper.js'
import { addVersion, buildWith, multipart, objects, PNG_RED, upload } from './helpers.js'
import { generated, sha256Of } from './storage-suite.js'
import { documentVersions } from '../../drizzle/schema/index.js'
import thumbnail from '../../src/jobs/thumbnail.js'
import sharp from 'sharp'
import { Readable } from 'node:stream'
import { newId } from '../../src/lib/ids.js'
import storageReconcile, { RECONCILE_GRACE_MS } from '../../src/jobs/storage-reconcile.js'

t.test('who may add, list, read and restore versions', async (t) => {
  const app = await buildWith(t, 'local')
  const owner = await createUser(app, 'editor')
  const admin = await createUser(app, 'admin')
  const viewer = await createUser(app, 'viewer')
  const editor = await createUser(app, 'editor')
  const reader = await createUser(app, 'editor')
  const writer = await createUser(app, 'editor')
  const noUpdate = await createUser(app, 'editor', { revokes: ['documents:update'] })
  const id = (await upload(app, owner.headers, { filename: 'a.txt', contentType: 'text/plain', data: 'first' }, [['visibility', 'internal']])).json().id as string
  for (const [u, access] of [[reader, 'read'], [writer, 'write'], [noUpdate, 'write']] as const) {
    t.equal((await app.inject({ method: 'PUT', url: `/documents/${id}/shares/${u.id}`, headers: owner.headers, payload: { access } })).statusCode, 200)
  }
  // [user, may read versions, add answer]
  const cases = [
    ['viewer', viewer, true, 403, 'forbidden'],
    ['editor without a share (internal document)', editor, true, 403, 'forbidden'],
    ['read share', reader, true, 403, 'forbidden'],
    ['write share without documents:update', noUpdate, true, 403, 'forbidden'],
    ['write share', writer, true, 201, undefined],
    ['owner', owner, true, 201, undefined],
    ['admin', admin, true, 201, undefined],
  ] as const
  let n = 1
  for (const [name, u, canRead, status, code] of cases) {
    const before = await objects(app)
    const res = await addVersion(app, u, id, `content by ${name}`)
    if (status === 201) {
      n++
      t.equal(res.statusCode, 201, `${name}: adds`)
      t.equal(res.json().number, n)
      t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/versions/1/restore`, headers: u.headers })).statusCode, 201, `${name}: restores`)
      n++
    } else {
      assertErrorShape(t, res, status, code)
      t.same(await objects(app), before, `${name}: nothing stored`)
      const r = await app.inject({ method: 'POST', url: `/documents/${id}/versions/1/restore`, headers: u.headers })
      t.equal(r.statusCode, status, `${name}: may not restore`)
      const s = await app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: u.headers, payload: { filename: 'x.txt', mimeType: 'text/plain', size: 3 } })
      t.equal(s.statusCode, 403, `${name}: may not start a version upload`)
    }
    t.equal((await app.inject({ url: `/documents/${id}/versions`, headers: u.headers })).statusCode, canRead ? 200 : 404, `${name}: lists`)
    t.equal((await app.inject({ url: `/documents/${id}/versions/1/content`, headers: u.headers })).statusCode, canRead ? 200 : 404, `${name}: reads`)
  }

  // a private document: invisible to those without a share (404, never 403)
  const priv = (await upload(app, owner.headers, { filename: 'p.txt', contentType: 'text/plain', data: 'private' })).json().id as string
  assertErrorShape(t, await addVersion(app, editor, priv, 'x'), 404, 'not_found')
  assertErrorShape(t, await app.inject({ url: `/documents/${priv}/versions`, headers: editor.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ url: `/documents/${priv}/versions/1/content`, headers: editor.headers }), 404, 'not_found')

  // the id's letter case does not matter; an unknown or malformed id is 404
  const upper = await addVersion(app, owner, priv.toUpperCase(), 'upper case id')
  t.equal(upper.statusCode, 201)
  t.equal(upper.headers.location, `/documents/${priv}/versions/2`)
  t.equal((await app.inject({ url: `/documents/${priv.toUpperCase()}/versions/2/content`, headers: owner.headers })).body, 'upper case id')
  assertErrorShape(t, await addVersion(app, owner, 'not-an-id', 'x'), 404, 'not_found')

  // trashed: 409 for those who may restore it, before any byte is stored; a pre-signed upload started before the trash fails at completion
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const ticket = (await app.inject({ method: 'POST', url: `/documents/${priv}/versions/uploads`, headers: owner.headers, payload: { filename: 'late.txt', mimeType: 'text/plain', size: 4 } })).json() as { uploadId: string, url: string, headers: Record<string, string> }
  t.equal((await fetch(ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`), { method: 'PUT', headers: ticket.headers, body: 'late' })).status, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${priv}`, headers: owner.headers })).statusCode, 204)
  const before = await objects(app)
  assertErrorShape(t, await addVersion(app, owner, priv, 'while trashed'), 409, 'document_trashed')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${priv}/versions/1/restore`, headers: owner.headers }), 409, 'document_trashed')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: owner.headers }), 409, 'document_trashed')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${priv}/versions/uploads`, headers: owner.headers, payload: { filename: 'x.txt', mimeType: 'text/plain', size: 3 } }), 409, 'document_trashed')
  t.same(await objects(app), before, 'nothing stored while trashed')
  assertErrorShape(t, await addVersion(app, editor, priv, 'x'), 404, 'not_found')
  // a write share revoked between start and complete: refused at completion
  const t2 = (await app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: writer.headers, payload: { filename: 'w.txt', mimeType: 'text/plain', size: 1 } })).json() as { uploadId: string }
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}/shares/${writer.id}`, headers: owner.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: `/uploads/${t2.uploadId}/complete`, headers: writer.headers })).statusCode, 403)
})

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: an upload failing mid-stream or at its check leaves no object and no version; concurrent versions get consecutive numbers`, async (t) => {
    const app = await buildWith(t, driver, { UPLOAD_MAX_BYTES: 1000, UPLOAD_ALLOWED_TYPES: 'text/*' })
    const ed = await createUser(app, 'editor')
    const id = (await upload(app, ed.headers, { filename: 'a.txt', contentType: 'text/plain', data: 'first' })).json().id as string
    const before = await objects(app)
    assertErrorShape(t, await addVersion(app, ed, id, 'x'.repeat(1001)), 413, 'payload_too_large')
    assertErrorShape(t, await addVersion(app, ed, id, PNG_RED), 415, 'unsupported_media_type')
    // truncated multipart body: the stream ends in the middle of the file
    const body = multipart({ filename: 'cut.txt', contentType: 'text/plain', data: 'y'.repeat(900) })
    const cut = await app.inject({ method: 'POST', url: `/documents/${id}/versions`, headers: { ...ed.headers, ...body.headers }, payload: body.payload.subarray(0, body.payload.length - 400) })
    t.ok(cut.statusCode >= 400 && cut.statusCode < 500, `truncated body: ${cut.statusCode}`)
    const extra = multipart({ filename: 'b.txt', contentType: 'text/plain', data: 'fine' }, [['title', 'no fields here']])
    assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${id}/versions`, headers: { ...ed.headers, ...extra.headers }, payload: extra.payload }), 400, 'validation_failed')
    // pre-signed: bytes that do not match the declared sha256 are discarded at completion
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const ticket = (await app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: ed.headers, payload: { filename: 'l.txt', mimeType: 'text/plain', size: 5, sha256: 'a'.repeat(64) } })).json() as { uploadId: string, url: string, headers: Record<string, string> }
    const url = driver === 'local' ? ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`) : ticket.url
    t.equal((await fetch(url, { method: 'PUT', headers: ticket.headers, body: 'hello' })).status, 200)
    assertErrorShape(t, await app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: ed.headers }), 400, 'checksum_mismatch')
    t.same(await objects(app), before, 'no object left behind')
    t.equal((await app.db.select().from(documentVersions).where(eq(documentVersions.documentId, id))).length, 1, 'no version row')

    // three at once: numbers 2, 3, 4, the last committed is current
    const all = await Promise.all(['a', 'b', 'c'].map(async (x) => await addVersion(app, ed, id, `concurrent ${x}`)))
    t.same(all.map(r => r.statusCode), [201, 201, 201])
    t.same(all.map(r => r.json().number as number).sort(), [2, 3, 4])
    const list = (await app.inject({ url: `/documents/${id}/versions`, headers: ed.headers })).json().items as Array<{ number: number, current: boolean, sha256: string }>
    t.same(list.map(v => [v.number, v.current]), [[4, true], [3, false], [2, false], [1, false]])
    t.equal((await app.inject({ url: `/documents/${id}`, headers: ed.headers })).json().sha256, list[0]!.sha256, 'the document shows the highest number')
  })
}

t.test('thumbnails follow the current version; a late job for an older version changes nothing', async (t) => {
  const app = await buildWith(t, 'local')
  const ed = await createUser(app, 'editor')
  const id = (await upload(app, ed.headers, { filename: 'red.png', data: PNG_RED })).json().id as string
  const run = async (version?: number) => await thumbnail.process(app, { data: { documentId: id, ...(version !== undefined ? { version } : {}) } } as Job<{ documentId: string, version?: number }>)
  await run()
  t.match((await app.inject({ url: `/documents/${id}`, headers: ed.headers })).json(), { status: 'ready', thumbnail: { width: 1, height: 1 } })
  const blue = await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer()
  const body = multipart({ filename: 'blue.png', contentType: 'image/png', data: blue })
  const v2 = await app.inject({ method: 'POST', url: `/documents/${id}/versions`, headers: { ...ed.headers, ...body.headers }, payload: body.payload })
  t.equal(v2.statusCode, 201)
  t.match((await app.inject({ url: `/documents/${id}`, headers: ed.headers })).json(), { status: 'processing', thumbnail: null, metadata: {} })
  const gif = await sharp({ create: { width: 10, height: 30, channels: 3, background: { r: 0, g: 255, b: 0 } } }).gif().toBuffer()
  const body3 = multipart({ filename: 'green.gif', contentType: 'image/gif', data: gif })
  t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/versions`, headers: { ...ed.headers, ...body3.headers }, payload: body3.payload })).statusCode, 201)
  t.same(await run(2), { skipped: true }, 'the job for version 2 is too late')
  await run(3)
  const doc = (await app.inject({ url: `/documents/${id}`, headers: ed.headers })).json()
  t.match(doc, { status: 'ready', mimeType: 'image/gif', thumbnail: { width: 10, height: 30 }, metadata: { width: 10, height: 30, format: 'gif' } })
  t.notOk((await objects(app)).includes(`documents/${id}/thumbnail-v2.webp`), 'no thumbnail of version 2 stored')
})

t.test('restoring a 100 MB version moves no bytes through the API process', async (t) => {
  const app = await buildWith(t, 'local', { UPLOAD_MAX_BYTES: 200 * 1024 * 1024 })
  const ed = await createUser(app, 'editor')
  const id = (await upload(app, ed.headers, { filename: 'a.bin', data: 'small first version' })).json().id as string
  // A 100 MB version 2, stored and added through the domain (a multipart body that size would be built in memory here).
  const big = 100 * 1024 * 1024
  const bigKey = `documents/${id}/versions/big`
  await app.storage.put(bigKey, generated(big))
  const { sha256 } = await sha256Of(await app.storage.get(bigKey))
  const ctx = { actorId: ed.id, ip: null, userAgent: null, requestId: null }
  const v2 = await app.versionService.add({ id: ed.id, can: () => true }, ctx, id, { storageKey: bigKey, size: big, sha256, mimeType: 'application/octet-stream', filename: 'big.bin' }, { via: 'multipart' })
  t.equal(v2.version.number, 2)
  t.equal((await addVersion(app, ed, id, 'small third version')).statusCode, 201)

  const calls: string[] = []
  const { get, put } = app.storage
  app.storage.get = async (...a) => { calls.push(`get ${a[0]}`); return await get.apply(app.storage, a) }
  app.storage.put = async (...a) => { calls.push(`put ${a[0]}`); return await put.apply(app.storage, a) }
  t.teardown(() => { app.storage.get = get; app.storage.put = put })
  const start = process.memoryUsage.rss()
  let peak = start
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 5)
  const restored = await app.inject({ method: 'POST', url: `/documents/${id}/versions/2/restore`, headers: ed.headers })
  clearInterval(timer)
  peak = Math.max(peak, process.memoryUsage.rss())
  t.equal(restored.statusCode, 201, restored.body)
  t.match(restored.json(), { number: 4, size: big, sha256 })
  t.same(calls, [], 'no get or put: a copy inside the storage')
  t.ok(peak - start < 32 * 1024 * 1024, `RSS stayed flat (grew ${((peak - start) / 1048576).toFixed(1)} MiB)`)
  app.storage.get = get
  const tail = await app.inject({ url: `/documents/${id}/content`, headers: { ...ed.headers, range: `bytes=${big - 16}-${big - 1}` } })
  t.same(tail.rawPayload, Buffer.concat(await (await get.call(app.storage, bigKey, { start: big - 16, end: big - 1 })).toArray() as Buffer[]))
})

t.test('storage-reconcile deletes a version object that no row names (a crash before its commit), and nothing a row names', async (t) => {
  const app = await buildWith(t, 'local')
  const ed = await createUser(app, 'editor')
  const id = (await upload(app, ed.headers, { filename: 'a.txt', contentType: 'text/plain', data: 'first' })).json().id as string
  t.equal((await addVersion(app, ed, id, 'second')).statusCode, 201)
  const named = await objects(app)
  const stray = `documents/${id}/versions/${newId()}`
  await app.storage.put(stray, Readable.from([Buffer.from('never committed')]))
  const later = new Date(Date.now() + RECONCILE_GRACE_MS + 3600_000)
  t.match(await storageReconcile.process(app, { data: { now: later.toISOString() } } as never), { known: 1, unknown: 0, deleted: 1 })
  t.same(await objects(app), named, 'only the stray object went')
})
