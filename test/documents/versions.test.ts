import t from 'tap'
import { createHash } from 'node:crypto'
import type { Job } from 'bullmq'
import { assertErrorShape } from '../helper.js'
import { createUser } from '../helper.js'
import { addVersion, buildWith, objects, upload } from './helpers.js'
import prune from '../../src/jobs/versions-prune.js'
import deleteObjects from '../../src/jobs/delete-objects.js'

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')

interface Ticket { uploadId: string, method: 'PUT', url: string, headers: Record<string, string>, expiresAt: string }

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: v1 -> v2 -> v3 by multipart and pre-signed; list, content, same bytes, restore, prune, purge`, async (t) => {
    const app = await buildWith(t, driver, { VERSIONS_KEEP: 3 })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const ed = await createUser(app, 'editor')

    const v1 = await upload(app, ed.headers, { filename: 'one.txt', contentType: 'text/plain', data: 'version one\n' })
    t.equal(v1.statusCode, 201)
    const id = v1.json().id as string
    const etag1 = v1.headers.etag as string

    // v2 by multipart, with If-Match on the metadata version
    assertErrorShape(t, await addVersion(app, ed, id, 'version two\n', { 'if-match': '"999"' }), 412, 'version_mismatch')
    const v2 = await addVersion(app, ed, id, 'version two\n', { 'if-match': etag1 }, 'two.txt')
    t.equal(v2.statusCode, 201, v2.body)
    t.match(v2.json(), { number: 2, size: 12, sha256: sha('version two\n'), mimeType: 'text/plain', filename: 'two.txt', createdBy: ed.id, current: true })
    t.equal(v2.headers.location, `/documents/${id}/versions/2`)
    const doc2 = (await app.inject({ url: `/documents/${id}`, headers: ed.headers }))
    t.equal(doc2.headers.etag, v2.headers.etag, 'the answer carries the document\'s new ETag')
    t.not(doc2.headers.etag, etag1, 'a new version changes the ETag')
    t.match(doc2.json(), { id, size: 12, sha256: sha('version two\n'), filename: 'two.txt', title: 'one.txt' })

    // v3 by pre-signed upload
    const start = await app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: ed.headers, payload: { filename: 'three.txt', mimeType: 'text/plain', size: 14, sha256: sha('version three\n') } })
    t.equal(start.statusCode, 201, start.body)
    const ticket = start.json() as Ticket
    const target = driver === 'local' ? ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`) : ticket.url
    t.equal((await fetch(target, { method: 'PUT', headers: ticket.headers, body: 'version three\n' })).status, 200)
    assertErrorShape(t, await app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: ed.headers, payload: { title: 'x' } }), 400, 'validation_failed')
    const v3 = await app.inject({ method: 'POST', url: `/uploads/${ticket.uploadId}/complete`, headers: ed.headers })
    t.equal(v3.statusCode, 201, v3.body)
    t.match(v3.json(), { number: 3, sha256: sha('version three\n'), filename: 'three.txt', current: true })
    t.equal((await app.inject({ url: `/documents/${id}/content`, headers: ed.headers })).body, 'version three\n')

    // the list, a page at a time
    const p1 = await app.inject({ url: `/documents/${id}/versions?limit=2`, headers: ed.headers })
    t.equal(p1.statusCode, 200)
    t.same(p1.json().items.map((v: { number: number, current: boolean }) => [v.number, v.current]), [[3, true], [2, false]])
    const p2 = await app.inject({ url: `/documents/${id}/versions?limit=2&cursor=${p1.json().nextCursor as string}`, headers: ed.headers })
    t.same(p2.json().items.map((v: { number: number }) => v.number), [1])
    t.equal(p2.json().nextCursor, null)
    assertErrorShape(t, await app.inject({ url: `/documents/${id}/versions?cursor=nope!`, headers: ed.headers }), 400, 'invalid_cursor')
    t.match((await app.inject({ url: `/documents/${id}/versions/1`, headers: ed.headers })).json(), { number: 1, current: false, filename: 'one.txt' })

    // each version's content: bytes, ETag, 304, Range, 416, redirect on S3
    for (const [n, text] of [[1, 'version one\n'], [2, 'version two\n'], [3, 'version three\n']] as const) {
      const url = `/documents/${id}/versions/${n}/content`
      const full = await app.inject({ url, headers: ed.headers })
      t.equal(full.statusCode, 200)
      t.equal(full.body, text)
      t.equal(full.headers.etag, `"${sha(text)}"`)
      t.equal((await app.inject({ url, headers: { ...ed.headers, 'if-none-match': full.headers.etag as string } })).statusCode, 304)
      const part = await app.inject({ url, headers: { ...ed.headers, range: 'bytes=0-6' } })
      t.equal(part.statusCode, 206)
      t.equal(part.body, 'version')
      t.equal(part.headers['content-range'], `bytes 0-6/${text.length}`)
      t.equal((await app.inject({ url, headers: { ...ed.headers, range: 'bytes=500-' } })).statusCode, 416)
      const redirect = await app.inject({ url: `${url}?redirect=true`, headers: ed.headers })
      if (driver === 's3') {
        t.equal(redirect.statusCode, 302)
        t.match(redirect.headers.location, /X-Amz-Signature=/)
        t.equal(await (await fetch(redirect.headers.location as string)).text(), text, 'the pre-signed URL serves that version')
      } else {
        t.equal(redirect.statusCode, 200, 'local storage streams instead of redirecting')
        t.equal(redirect.body, text)
      }
    }
    assertErrorShape(t, await app.inject({ url: `/documents/${id}/versions/4/content`, headers: ed.headers }), 404, 'not_found')
    assertErrorShape(t, await app.inject({ url: `/documents/${id}/versions/0/content`, headers: ed.headers }), 400, 'validation_failed')

    // the same bytes again: 200 with the current version, nothing stored, ETag unchanged
    const before = await objects(app)
    const etag3 = (await app.inject({ url: `/documents/${id}`, headers: ed.headers })).headers.etag
    const same = await addVersion(app, ed, id, 'version three\n')
    t.equal(same.statusCode, 200, same.body)
    t.match(same.json(), { number: 3, current: true })
    t.equal(same.headers.etag, etag3)
    const sameUp = (await app.inject({ method: 'POST', url: `/documents/${id}/versions/uploads`, headers: ed.headers, payload: { filename: 'again.txt', mimeType: 'text/plain', size: 14 } })).json() as Ticket
    const sameTarget = driver === 'local' ? sameUp.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`) : sameUp.url
    t.equal((await fetch(sameTarget, { method: 'PUT', headers: sameUp.headers, body: 'version three\n' })).status, 200)
    const sameDone = await app.inject({ method: 'POST', url: `/uploads/${sameUp.uploadId}/complete`, headers: ed.headers })
    t.equal(sameDone.statusCode, 200, sameDone.body)
    t.same(await objects(app), before, 'no object added by either')

    // restore: v1 again as v4, copied inside the storage; restoring the current content is a no-op
    const calls: string[] = []
    const { get, put } = app.storage
    app.storage.get = async (...args) => { calls.push(`get ${args[0]}`); return await get.apply(app.storage, args) }
    app.storage.put = async (...args) => { calls.push(`put ${args[0]}`); return await put.apply(app.storage, args) }
    t.teardown(() => { app.storage.get = get; app.storage.put = put })
    const restored = await app.inject({ method: 'POST', url: `/documents/${id}/versions/1/restore`, headers: ed.headers })
    t.equal(restored.statusCode, 201, restored.body)
    t.match(restored.json(), { number: 4, sha256: sha('version one\n'), filename: 'one.txt', current: true })
    t.same(calls, [], 'no byte went through this process')
    t.equal((await app.inject({ url: `/documents/${id}/content`, headers: ed.headers })).body, 'version one\n')
    t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/versions/4/restore`, headers: ed.headers })).statusCode, 200, 'the current version: nothing to do')
    t.equal((await app.inject({ method: 'POST', url: `/documents/${id}/versions/1/restore`, headers: ed.headers })).statusCode, 200, 'the same bytes as the current: nothing to do')
    assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${id}/versions/9/restore`, headers: ed.headers }), 404, 'not_found')
    assertErrorShape(t, await app.inject({ method: 'POST', url: `/documents/${id}/versions/2/restore`, headers: { ...ed.headers, 'if-match': '"1"' } }), 412, 'version_mismatch')

    // prune: VERSIONS_KEEP=3 keeps 4, 3, 2; version 1's row and object go
    const v1Key = `documents/${id}/original`
    t.ok((await objects(app)).includes(v1Key))
    t.same(await prune.process(app, { data: { documentId: id } } as Job<{ documentId: string }>), { pruned: [1] })
    t.notOk((await objects(app)).includes(v1Key), 'version 1\'s object deleted')
    const left = (await app.inject({ url: `/documents/${id}/versions`, headers: ed.headers })).json().items.map((v: { number: number }) => v.number)
    t.same(left, [4, 3, 2])
    t.same(await prune.process(app, { data: { documentId: id } } as Job<{ documentId: string }>), { pruned: [] }, 'nothing more to prune')
    assertErrorShape(t, await app.inject({ url: `/documents/${id}/versions/1/content`, headers: ed.headers }), 404, 'not_found')

    // audit
    const audit = await app.inject({ url: `/audit-events?subject=document:${id}&limit=100`, headers: (await createUser(app, 'admin')).headers })
    const actions = audit.json().items.map((e: { action: string }) => e.action)
    t.equal(actions.filter((a: string) => a === 'document.version_added').length, 2)
    t.equal(actions.filter((a: string) => a === 'document.version_restored').length, 1)
    t.equal(actions.filter((a: string) => a === 'document.versions_pruned').length, 1)

    // purge: every version's object goes
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: ed.headers })).statusCode, 204)
    const keys = (await objects(app)).filter(k => k.startsWith(`documents/${id}/`))
    t.equal(keys.length, 3, 'three versions stored before the purge')
    const mine = new Set<string>()
    const enqueue = app.enqueue
    app.enqueue = (async (name: string, data: { keys: string[] }) => { if (name === 'delete-objects') data.keys.forEach(k => mine.add(k)); return 'x' }) as typeof app.enqueue
    t.teardown(() => { app.enqueue = enqueue })
    t.equal((await app.inject({ method: 'DELETE', url: `/documents/${id}?permanent=true`, headers: ed.headers })).statusCode, 204)
    for (const k of keys) t.ok(mine.has(k), `purge queues ${k}`)
    await deleteObjects.process(app, { data: { keys: [...mine] } } as Job<{ keys: string[] }>)
    t.same((await objects(app)).filter(k => k.startsWith(`documents/${id}/`)), [], 'no object of the document left')
  })
}
