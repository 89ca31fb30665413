import t from 'tap'
import { createHash } from 'node:crypto'
import { createUser, assertErrorShape } from '../helper.js'
import { buildWith, upload, multipart, storedFiles } from './helpers.js'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: upload, read, download with Range / If-None-Match, trash, restore, delete`, async (t) => {
    const app = await buildWith(t, driver)
    const ed = await createUser(app, 'editor')
    const text = 'Hello, Quire!\nSecond line of a plain text file.\n'
    const res = await upload(app, ed.headers, { filename: 'notes.txt', contentType: 'application/x-evil', data: text }, [['title', 'My notes'], ['tags', ' Work '], ['tags', 'work'], ['tags', 'Q1']], [['description', 'after the file'], ['visibility', 'internal']])
    t.equal(res.statusCode, 201, res.body)
    const doc = res.json()
    t.match(doc, { title: 'My notes', description: 'after the file', filename: 'notes.txt', mimeType: 'text/plain', size: Buffer.byteLength(text), sha256: sha(text), status: 'ready', visibility: 'internal', tags: ['work', 'q1'], ownerId: ed.id, version: 1, thumbnail: null, deletedAt: null })
    t.equal(res.headers.etag, '"1"')
    t.equal(res.headers.location, `/documents/${doc.id}`, 'Location of the new document')

    const one = await app.inject({ url: `/documents/${doc.id}`, headers: ed.headers })
    t.equal(one.statusCode, 200)
    t.equal(one.headers.etag, '"1"')
    const notModified = await app.inject({ url: `/documents/${doc.id}`, headers: { ...ed.headers, 'if-none-match': '"7", "1"' } })
    t.equal(notModified.statusCode, 304, 'If-None-Match on the metadata')
    t.equal(notModified.body, '')
    t.equal((await app.inject({ url: `/documents/${doc.id}`, headers: { ...ed.headers, 'if-none-match': '"2"' } })).statusCode, 200)

    const dl = await app.inject({ url: `/documents/${doc.id}/content`, headers: ed.headers })
    t.equal(dl.statusCode, 200)
    t.equal(dl.body, text)
    t.equal(dl.headers['content-type'], 'text/plain')
    t.equal(dl.headers['content-length'], String(Buffer.byteLength(text)))
    t.equal(dl.headers.etag, `"${sha(text)}"`)
    t.equal(dl.headers['content-disposition'], 'attachment; filename="notes.txt"; filename*=UTF-8\'\'notes.txt')

    const part = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, range: 'bytes=7-11' } })
    t.equal(part.statusCode, 206)
    t.equal(part.body, 'Quire')
    t.equal(part.headers['content-range'], `bytes 7-11/${Buffer.byteLength(text)}`)
    t.equal(part.headers['content-length'], '5')
    const sameRep = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, range: 'bytes=7-11', 'if-range': `"${sha(text)}"` } })
    t.equal(sameRep.statusCode, 206, 'If-Range naming the current ETag: the range')
    t.equal(sameRep.body, 'Quire')
    const otherRep = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, range: 'bytes=7-11', 'if-range': '"stale"' } })
    t.equal(otherRep.statusCode, 200, 'If-Range naming another ETag: the whole body')
    t.equal(otherRep.body, text)
    const dated = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, range: 'bytes=7-11', 'if-range': new Date().toUTCString() } })
    t.equal(dated.statusCode, 200, 'If-Range with a date (no Last-Modified is sent): the whole body')
    const suffix = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, range: 'bytes=-5' } })
    t.equal(suffix.statusCode, 206)
    t.equal(suffix.body, 'ile.\n')
    const bad = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, range: 'bytes=9999-' } })
    assertErrorShape(t, bad, 416, 'range_not_satisfiable')
    t.equal(bad.headers['content-range'], `bytes */${Buffer.byteLength(text)}`)
    const cached = await app.inject({ url: `/documents/${doc.id}/content`, headers: { ...ed.headers, 'if-none-match': `"${sha(text)}"` } })
    t.equal(cached.statusCode, 304)
    t.equal(cached.body, '')

    const redirect = await app.inject({ url: `/documents/${doc.id}/content?redirect=true`, headers: ed.headers })
    if (driver === 's3') {
      t.equal(redirect.statusCode, 302)
      const loc = String(redirect.headers.location)
      t.match(loc, /X-Amz-Signature=/)
      t.equal(new URL(loc).searchParams.get('X-Amz-Expires'), String(app.config.DOWNLOAD_URL_TTL))
      const viaUrl = await fetch(loc)
      t.equal(await viaUrl.text(), text, 'the pre-signed URL serves the bytes')
    } else {
      t.equal(redirect.statusCode, 200, 'local storage streams instead of redirecting')
    }

    const thumb = await app.inject({ url: `/documents/${doc.id}/thumbnail`, headers: ed.headers })
    assertErrorShape(t, thumb, 404, 'not_found')

    // trash: gone from the list and single reads for others, still restorable by the owner
    const del = await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers })
    t.equal(del.statusCode, 204)
    const list = await app.inject({ url: '/documents', headers: ed.headers })
    t.notOk(list.json().items.some((d: { id: string }) => d.id === doc.id))
    const trash = await app.inject({ url: '/documents?trashed=true', headers: ed.headers })
    t.ok(trash.json().items.some((d: { id: string }) => d.id === doc.id))
    const viewer = await createUser(app, 'viewer')
    assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}`, headers: viewer.headers }), 404, 'not_found')
    assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers }), 409, 'already_trashed')
    assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: ed.headers, payload: { title: 'x' } }), 409, 'document_trashed')
    assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: viewer.headers, payload: { title: 'x' } }), 403, 'forbidden')
    const restored = await app.inject({ method: 'POST', url: `/documents/${doc.id}/restore`, headers: ed.headers })
    t.equal(restored.statusCode, 200)
    t.equal(restored.json().deletedAt, null)
    t.equal(restored.json().version, 3)

    // permanent: the owner must trash first; then the row goes and a job deletes the object
    assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/documents/${doc.id}?permanent=true`, headers: ed.headers }), 409, 'not_trashed')
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}?permanent=true`, headers: ed.headers })).statusCode, 204)
    assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}`, headers: ed.headers }), 404, 'not_found')
    t.ok(await app.storage.head(`documents/${doc.id}/original`), 'object still there until the job runs')
    const jobs = await app.queues.cleanup.getJobs(['waiting', 'delayed', 'prioritized'])
    const job = jobs.find(j => j.name === 'delete-objects' && (j.data as { keys: string[] }).keys.includes(`documents/${doc.id}/original`))
    t.ok(job, 'delete-objects job queued')
    const { default: def } = await import('../../src/jobs/delete-objects.js')
    await def.process(app, job as never)
    t.equal(await app.storage.head(`documents/${doc.id}/original`), null, 'object deleted by the job')
  })
}

t.test('multipart edge cases', async (t) => {
  const app = await buildWith(t, 'local')
  const ed = await createUser(app, 'editor')
  const noFile = multipart(null, [['title', 'x']])
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/documents', headers: { ...ed.headers, ...noFile.headers }, payload: noFile.payload }), 400, 'validation_failed')
  assertErrorShape(t, await upload(app, ed.headers, { filename: 'a.txt', data: 'abc' }, [['colour', 'red']]), 400, 'validation_failed')
  assertErrorShape(t, await upload(app, ed.headers, { filename: 'a.txt', data: 'abc' }, [], [['visibility', 'public']]), 400, 'validation_failed')
  assertErrorShape(t, await upload(app, ed.headers, { filename: 'a.txt', data: 'abc' }, [], Array.from({ length: 21 }, (_, i) => ['tags', `t${i}`] as [string, string])), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/documents', headers: { ...ed.headers, 'content-type': 'application/json' }, payload: '{}' }), 415, 'unsupported_media_type')
  const viewer = await createUser(app, 'viewer')
  assertErrorShape(t, await upload(app, viewer.headers, { filename: 'a.txt', data: 'abc' }), 403, 'forbidden')
  // non-ASCII filename: safe ASCII fallback + RFC 5987
  const res = await upload(app, ed.headers, { filename: 'Résumé 100%.txt', data: 'hi' })
  t.equal(res.statusCode, 201)
  const dl = await app.inject({ url: `/documents/${res.json().id}/content`, headers: ed.headers })
  t.equal(dl.headers['content-disposition'], 'attachment; filename="Resume 100_.txt"; filename*=UTF-8\'\'R%C3%A9sum%C3%A9%20100%25.txt')
  // left-over rows/objects: none of the failed requests above stored anything
  t.same(storedFiles(app.config.STORAGE_DIR), [`documents/${res.json().id}/original`], 'only the one successful upload is stored')
})

t.test('s3: a file of several multipart-upload parts is stored whole, with its size and sha256', async (t) => {
  const app = await buildWith(t, 's3')
  const ed = await createUser(app, 'editor')
  const data = Buffer.alloc(12 * 1024 * 1024 + 123, 'quire multipart upload parts ')
  const res = await upload(app, ed.headers, { filename: 'big.txt', contentType: 'text/plain', data })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { size: data.length, sha256: sha(data) })
  const dl = await app.inject({ url: `/documents/${res.json().id as string}/content`, headers: ed.headers })
  t.equal(dl.statusCode, 200)
  t.equal(dl.rawPayload.length, data.length)
  t.equal(sha(dl.rawPayload), sha(data), 'the stored bytes are the uploaded ones')
})
