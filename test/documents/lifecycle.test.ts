import t from 'tap'
import sharp from 'sharp'
import { setTimeout as sleep } from 'node:timers/promises'
import { and, eq, inArray } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { auditEvents, documents } from '../../drizzle/schema/index.js'
import { startWorkers } from '../../src/worker-runner.js'
import { createUser, assertErrorShape, type TestUser } from '../helper.js'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { buildWith, upload } from './helpers.js'
import trashPurge from '../../src/jobs/trash-purge.js'

async function waitStatus (app: FastifyInstance, user: TestUser, id: string, not: string): Promise<Record<string, any>> {
  for (let i = 0; i < 200; i++) {
    const doc = (await app.inject({ url: `/documents/${id}`, headers: user.headers })).json()
    if (doc.status !== not) return doc
    await sleep(50)
  }
  throw new Error('document stayed ' + not)
}

t.test('thumbnails: the worker makes a webp, honours EXIF orientation, keeps no EXIF/GPS; bad images fail', async (t) => {
  const app = await buildWith(t, 'local')
  const running = await startWorkers(app, ['media'])
  t.teardown(async () => await running.close())
  const ed = await createUser(app, 'editor')
  const jpeg = await sharp({ create: { width: 600, height: 400, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .withExifMerge({ IFD0: { Copyright: 'secret' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2900/100' } })
    .toBuffer()
  t.ok((await sharp(jpeg).metadata()).exif, 'the source has EXIF')
  const res = await upload(app, ed.headers, { filename: 'photo.jpg', data: jpeg })
  t.equal(res.statusCode, 201)
  t.equal(res.json().status, 'processing')
  const doc = await waitStatus(app, ed, res.json().id, 'processing')
  t.equal(doc.status, 'ready')
  t.same(doc.thumbnail, { width: 171, height: 256 }, 'rotated per EXIF, fit inside 256x256')
  t.same(doc.metadata, { width: 400, height: 600, format: 'jpeg' }, 'only dimensions and format are stored')
  t.ok(doc.version > 1, 'version bumped by processing')
  const thumb = await app.inject({ url: `/documents/${doc.id}/thumbnail`, headers: ed.headers })
  t.equal(thumb.statusCode, 200)
  t.equal(thumb.headers['content-type'], 'image/webp')
  const meta = await sharp(thumb.rawPayload).metadata()
  t.equal(meta.format, 'webp')
  t.equal(meta.exif, undefined, 'no EXIF (and so no GPS) in the thumbnail')

  const broken = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(200, 7)])
  const bad = await upload(app, ed.headers, { filename: 'broken.png', data: broken })
  t.equal(bad.json().mimeType, 'image/png')
  const failed = await waitStatus(app, ed, bad.json().id, 'processing')
  t.equal(failed.status, 'failed')
  t.match(failed.error, /thumbnail failed/)
  assertErrorShape(t, await app.inject({ url: `/documents/${failed.id}/thumbnail`, headers: ed.headers }), 404, 'not_found')
})

t.test('PATCH with If-Match, tags normalized, list filters and cursor pagination', async (t) => {
  const app = await buildWith(t, 'local')
  const ed = await createUser(app, 'editor')
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    const r = await upload(app, ed.headers, { filename: `file-${i}.txt`, data: `text number ${i}` }, [['title', i === 3 ? 'Quarterly 100% report' : `Doc ${i}`], ['tags', i % 2 === 0 ? 'even' : 'odd']])
    ids.push(r.json().id)
  }
  const id = ids[0]
  const p1 = await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: { ...ed.headers, 'if-match': '"1"' }, payload: { title: 'Renamed', tags: [' Alpha ', 'alpha', 'BETA'] } })
  t.equal(p1.statusCode, 200)
  t.equal(p1.headers.etag, '"2"')
  t.match(p1.json(), { title: 'Renamed', tags: ['alpha', 'beta'], version: 2 })
  const stale = await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: { ...ed.headers, 'if-match': '"1"' }, payload: { title: 'Lost update' } })
  assertErrorShape(t, stale, 412, 'version_mismatch')
  const listed = await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: { ...ed.headers, 'if-match': '"1", "2"' }, payload: { title: 'Renamed' } })
  t.equal(listed.statusCode, 200, 'If-Match with a list naming the current version')
  t.equal(listed.headers.etag, '"3"')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: { ...ed.headers, 'if-match': '"1", "2"' }, payload: { title: 'Lost' } }), 412, 'version_mismatch')
  for (const title of ['nul\u0000byte', 'escape\u001b[31m', 'bell\u0007']) {
    assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { title } }), 400, 'validation_failed')
  }
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { description: 'a\u0000b' } }), 400, 'validation_failed')
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { description: 'line one\n\tline two' } })).statusCode, 200, 'line breaks and tabs in a description are fine')
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { title: 'Résumé – 2026 ✓' } })).statusCode, 200, 'non-ASCII titles are fine')
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { description: null } })).json().version, 6, 'no If-Match: applies, version bumps')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { title: 'x', owner: 'me' } }), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: { tags: ['x'.repeat(65)] } }), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: ed.headers, payload: {} }), 400, 'validation_failed')

  const list = async (q: string) => (await app.inject({ url: `/documents?ownerId=${ed.id}&${q}`, headers: ed.headers })).json()
  t.same((await list('limit=100')).items.map((d: { id: string }) => d.id), [...ids].reverse(), 'newest first')
  t.same((await list('tag=EVEN')).items.map((d: { id: string }) => d.id), [ids[4], ids[2]], 'tag filter (normalized)')
  t.same((await list('tag=alpha')).items.map((d: { id: string }) => d.id), [ids[0]], 'tags replaced by PATCH')
  t.same((await list('q=100%25')).items.map((d: { id: string }) => d.id), [ids[3]], 'q: LIKE wildcards are literal')
  t.same((await list('q=file-2')).items.map((d: { id: string }) => d.id), [ids[2]], 'q searches the filename')
  t.equal((await list('mimeType=text/*')).items.length, 5)
  t.equal((await list('mimeType=image/png')).items.length, 0)
  t.equal((await list('status=ready')).items.length, 5)
  const page1 = await list('limit=2')
  t.equal(page1.items.length, 2)
  const page2 = await list(`limit=2&cursor=${page1.nextCursor}`)
  const page3 = await list(`limit=2&cursor=${page2.nextCursor}`)
  t.same([...page1.items, ...page2.items, ...page3.items].map((d: { id: string }) => d.id), [...ids].reverse())
  t.equal(page3.nextCursor, null)
  assertErrorShape(t, await app.inject({ url: '/documents?cursor=garbage!', headers: ed.headers }), 400, 'invalid_cursor')
  assertErrorShape(t, await app.inject({ url: `/documents?cursor=${Buffer.from('d:nope').toString('base64url')}`, headers: ed.headers }), 400, 'invalid_cursor')
  assertErrorShape(t, await app.inject({ url: '/documents?limit=101', headers: ed.headers }), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ url: '/documents?limit=0', headers: ed.headers }), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ url: '/documents/not-an-id', headers: ed.headers }), 404, 'not_found')
})

t.test('shares: put, change, list, delete; target must exist; audit trail', async (t) => {
  const app = await buildWith(t, 'local')
  const owner = await createUser(app, 'editor')
  const friend = await createUser(app, 'viewer')
  const doc = (await upload(app, owner.headers, { filename: 's.txt', data: 'shared text' })).json()
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}`, headers: friend.headers }), 404, 'not_found')
  const put = await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${friend.id}`, headers: owner.headers, payload: { access: 'read' } })
  t.equal(put.statusCode, 200)
  t.match(put.json(), { userId: friend.id, access: 'read' })
  t.equal((await app.inject({ url: `/documents/${doc.id}`, headers: friend.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${friend.id}`, headers: owner.headers, payload: { access: 'write' } })).json().access, 'write')
  const shares = await app.inject({ url: `/documents/${doc.id}/shares`, headers: owner.headers })
  t.match(shares.json().items, [{ userId: friend.id, access: 'write' }])
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}/shares`, headers: friend.headers }), 403, 'forbidden')
  assertErrorShape(t, await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/01900000-0000-7000-8000-000000000000`, headers: owner.headers, payload: { access: 'read' } }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${friend.id}`, headers: owner.headers, payload: { access: 'admin' } }), 400, 'validation_failed')
  assertErrorShape(t, await app.inject({ method: 'PUT', url: `/documents/${doc.id}/shares/${owner.id}`, headers: owner.headers, payload: { access: 'read' } }), 400, 'validation_failed')
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}/shares/${friend.id}`, headers: owner.headers })).statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/documents/${doc.id}/shares/${friend.id}`, headers: owner.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ url: `/documents/${doc.id}`, headers: friend.headers }), 404, 'not_found')
  await app.inject({ url: `/documents/${doc.id}/content`, headers: owner.headers })
  await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: owner.headers })
  await app.inject({ method: 'POST', url: `/documents/${doc.id}/restore`, headers: owner.headers })
  const events = await app.db.select({ action: auditEvents.action }).from(auditEvents).where(eq(auditEvents.subject, `document:${doc.id}`)).orderBy(auditEvents.id)
  t.same(events.map(e => e.action), ['document.create', 'document.share', 'document.share', 'document.unshare', 'document.download', 'document.delete', 'document.restore'])
  const admin = await createUser(app, 'admin')
  const viaApi = await app.inject({ url: `/audit-events?subject=document:${doc.id}&limit=100`, headers: admin.headers })
  t.same(viaApi.json().items.map((e: { action: string }) => e.action).reverse(), events.map(e => e.action), 'subjects are "<kind>:<id>" like users and sessions')
})

t.test('trash purge: documents trashed longer than TRASH_RETENTION_DAYS are deleted with their objects', async (t) => {
  const app = await buildWith(t, 'local', { TRASH_RETENTION_DAYS: 7 })
  const ed = await createUser(app, 'editor')
  const old = (await upload(app, ed.headers, { filename: 'old.txt', data: 'old' })).json()
  const recent = (await upload(app, ed.headers, { filename: 'recent.txt', data: 'recent' })).json()
  const kept = (await upload(app, ed.headers, { filename: 'kept.txt', data: 'kept' })).json()
  await app.inject({ method: 'DELETE', url: `/documents/${old.id}`, headers: ed.headers })
  await app.inject({ method: 'DELETE', url: `/documents/${recent.id}`, headers: ed.headers })
  await app.db.update(documents).set({ deletedAt: new Date(Date.now() - 8 * 24 * 3600_000) }).where(eq(documents.id, old.id))
  const result = await trashPurge.process(app, { data: {} } as never) as { purged: number }
  t.ok(result.purged >= 1)
  const left = await app.db.select({ id: documents.id }).from(documents).where(inArray(documents.id, [old.id, recent.id, kept.id]))
  t.same(left.map(r => r.id).sort(), [recent.id, kept.id].sort())
  const job = (await app.queues.cleanup.getJobs(['waiting', 'delayed', 'prioritized'])).find(j => j.name === 'delete-objects' && (j.data as { keys: string[] }).keys.includes(`documents/${old.id}/original`))
  t.ok(job, 'object deletion queued')
  const audit = await app.db.select().from(auditEvents).where(and(eq(auditEvents.subject, `document:${old.id}`), eq(auditEvents.action, 'document.purge')))
  t.equal(audit.length, 1)
})

t.test('a permanent delete leaves no empty documents/<id>/ directory on local storage', async (t) => {
  const app = await buildWith(t, 'local')
  const workers = await startWorkers(app, ['cleanup'])
  t.teardown(async () => await workers.close())
  const ed = await createUser(app, 'editor')
  const root = app.config.STORAGE_DIR
  const doc = (await upload(app, ed.headers, { filename: 'p.txt', data: 'purge me' })).json()
  const keep = (await upload(app, ed.headers, { filename: 'k.txt', data: 'keep' })).json()
  t.ok(existsSync(join(root, 'documents', doc.id, 'original')))
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: ed.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${doc.id}?permanent=true`, headers: ed.headers })).statusCode, 204)
  for (let i = 0; i < 200 && existsSync(join(root, 'documents', doc.id)); i++) await sleep(50)
  t.notOk(existsSync(join(root, 'documents', doc.id)), 'the document\'s directory is gone')
  t.ok(existsSync(join(root, 'documents', keep.id, 'original')), 'another document is untouched')
  t.ok(existsSync(root), 'the storage root stays')
})
