import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import type { FastifyInstance } from 'fastify'
import { documents, uploads } from '../../drizzle/schema/index.js'
import { storedFiles } from '../documents/helpers.js'
import { build, createUser, assertErrorShape, type TestUser } from '../helper.js'
import { startS3WithListParts } from './s3-multipart.js'
import { s3ClientConfig } from '../../src/storage/s3.js'
import { stagingKey } from '../../src/domain/upload-staging.js'
import sweep, { SWEEP_GRACE_MS } from '../../src/jobs/uploads-sweep.js'
import { listen, metadataHeader, statusOf, tusFirstChunk, tusUpload } from './tus-helpers.js'
import { privateDatabase } from './private-db.js'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const TUS = { 'tus-resumable': '1.0.0' }

/** Every object in the app's S3 bucket, and the multipart uploads still open there. */
async function s3State (app: FastifyInstance): Promise<{ objects: string[], multipart: string[] }> {
  const client = new S3Client(s3ClientConfig(app.config))
  try {
    const objects = (await client.send(new ListObjectsV2Command({ Bucket: app.config.S3_BUCKET }))).Contents?.map(o => o.Key ?? '') ?? []
    const multipart = (await client.send(new ListMultipartUploadsCommand({ Bucket: app.config.S3_BUCKET }))).Uploads?.map(u => u.Key ?? '') ?? []
    return { objects, multipart }
  } finally {
    client.destroy()
  }
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: tus uploads through tus-js-client`, async (t) => {
    const dbUrl = await privateDatabase(t)
    const s3 = driver === 's3' ? await startS3WithListParts(t) : {}
    const app = await build(t, { ...s3, DATABASE_URL: dbUrl, UPLOAD_MAX_BYTES: 64 * 1024 * 1024, UPLOAD_ALLOWED_TYPES: 'text/*,application/octet-stream,image/*' })
    const base = await listen(app)
    const endpoint = `${base}/uploads/tus`
    const ed = await createUser(app, 'editor')
    const headers = (u: TestUser) => ({ authorization: u.headers.authorization })

    t.test('a document: metadata, sha256, audit; 12 MiB in 5 MiB PATCHes (several S3 parts)', async (t) => {
      const body = randomBytes(12 * 1024 * 1024 + 7)
      const r = await tusUpload(body, {
        endpoint,
        headers: headers(ed),
        chunkSize: 5 * 1024 * 1024,
        metadata: { title: 'Big scan', tags: 'scans,2026', visibility: 'private', filename: 'scan.bin', filetype: 'application/octet-stream', sha256: sha(body) },
      })
      t.ok(r.documentId, 'Quire-Document-Id on the last PATCH')
      const doc = (await app.inject({ method: 'GET', url: `/documents/${r.documentId ?? ''}`, headers: ed.headers })).json() as Record<string, unknown>
      t.match(doc, { title: 'Big scan', tags: ['scans', '2026'], visibility: 'private', filename: 'scan.bin', size: body.length, sha256: sha(body) })
      const content = await app.inject({ method: 'GET', url: `/documents/${r.documentId ?? ''}/content`, headers: ed.headers })
      t.equal(sha(content.rawPayload), sha(body), 'the stored bytes are the sent ones')
      const [row] = await app.db.select().from(uploads).where(eq(uploads.id, r.documentId ?? ''))
      t.equal(row?.status, 'completed', 'the upload row is completed')
      const audit = await app.inject({ method: 'GET', url: `/audit-events?action=document.create&subjectId=${r.documentId ?? ''}`, headers: (await createUser(app, 'admin')).headers })
      if (audit.statusCode === 200) t.match(JSON.stringify(audit.json()), /"via":"tus"/, 'audited as a tus upload')
      // the store's leftovers are gone
      if (driver === 'local') t.same(storedFiles(app.config.STORAGE_DIR).filter(f => f.startsWith('uploads/')), [], 'no staging file or .json left')
      else t.same((await s3State(app)).objects.filter(k => k.startsWith('uploads/')), [], 'no .info or .part left')
    })

    t.test('a text file: type sniffed, no sha256 declared', async (t) => {
      const r = await tusUpload(Buffer.from('hello tus\n'), { endpoint, headers: headers(ed), metadata: { filename: 'a.txt', filetype: 'text/plain' } })
      const doc = (await app.inject({ method: 'GET', url: `/documents/${r.documentId ?? ''}`, headers: ed.headers })).json() as Record<string, unknown>
      t.match(doc, { mimeType: 'text/plain', size: 10, sha256: sha('hello tus\n'), filename: 'a.txt' })
    })

    t.test('a new version via tus (documentId), and who may', async (t) => {
      const first = await tusUpload(Buffer.from('version one\n'), { endpoint, headers: headers(ed), metadata: { filename: 'v.txt', filetype: 'text/plain' } })
      const id = first.documentId ?? ''
      const r = await tusUpload(Buffer.from('version two\n'), { endpoint, headers: headers(ed), metadata: { filename: 'v2.txt', filetype: 'text/plain', documentId: id } })
      t.equal(r.documentId, id)
      t.equal(r.version, '2', 'Quire-Version: the new version')
      const doc = (await app.inject({ method: 'GET', url: `/documents/${id}`, headers: ed.headers })).json() as Record<string, unknown>
      t.match(doc, { sha256: sha('version two\n') })
      // fields with a version, someone else's document, no documents:update
      const other = await createUser(app, 'editor')
      const create = async (u: TestUser, meta: Record<string, string>) => await app.inject({ method: 'POST', url: '/uploads/tus', headers: { ...u.headers, ...TUS, 'upload-length': '5', 'upload-metadata': metadataHeader(meta) } })
      assertErrorShape(t, await create(ed, { documentId: id, title: 'x' }), 400, 'validation_failed')
      const hidden = await create(other, { documentId: id })
      t.ok([403, 404].includes(hidden.statusCode), 'another user cannot add a version to a private document')
      const contributor = await createUser(app, 'editor', { revokes: ['documents:update'] })
      assertErrorShape(t, await create(contributor, { documentId: id }), 403, 'forbidden')
      assertErrorShape(t, await create(ed, { documentId: randomBytes(4).toString('hex') }), 404, 'not_found')
    })

    t.test('4xx: authentication, permission, length, metadata, checksum', async (t) => {
      const post = async (h: Record<string, string>) => await app.inject({ method: 'POST', url: '/uploads/tus', headers: { ...TUS, ...h } })
      assertErrorShape(t, await post({ 'upload-length': '5' }), 401, 'unauthorized')
      assertErrorShape(t, await post({ authorization: 'Bearer nope', 'upload-length': '5' }), 401)
      const viewer = await createUser(app, 'viewer')
      assertErrorShape(t, await post({ ...viewer.headers, 'upload-length': '5' }), 403, 'forbidden')
      assertErrorShape(t, await post({ ...ed.headers }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-defer-length': '1' }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '-1' }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '5', 'upload-concat': 'partial' }), 400)
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': String(64 * 1024 * 1024 + 1) }), 413, 'payload_too_large')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '5', 'upload-metadata': 'title !!!notbase64' }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '5', 'upload-metadata': metadataHeader({ sha256: 'abc' }) }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '5', 'upload-metadata': metadataHeader({ visibility: 'everyone' }) }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '5', 'upload-metadata': metadataHeader({ title: '' }) }), 400, 'validation_failed')
      assertErrorShape(t, await post({ ...ed.headers, 'upload-length': '5', 'upload-metadata': metadataHeader({ filetype: 'application/pdf' }) }), 415, 'unsupported_media_type')
      const options = await app.inject({ method: 'OPTIONS', url: '/uploads/tus' })
      t.equal(options.statusCode, 204)
      t.notMatch(String(options.headers['tus-extension']), /defer-length|concatenation/, 'OPTIONS offers only what is accepted')
      t.match(String(options.headers['tus-extension']), /creation/)
      const noTus = await app.inject({ method: 'POST', url: '/uploads/tus', headers: { ...ed.headers, 'upload-length': '5' } })
      t.equal(noTus.statusCode, 412, 'Tus-Resumable is required')

      // someone else's upload, a malformed id: 404; no bytes reach it
      const mine = await post({ ...ed.headers, 'upload-length': '5' })
      t.equal(mine.statusCode, 201)
      const location = String(mine.headers.location)
      const path = new URL(location).pathname
      t.match(path, /^\/uploads\/tus\/[0-9a-f-]{36}$/, 'Location: /uploads/tus/<id>')
      const other = await createUser(app, 'editor')
      t.equal((await app.inject({ method: 'HEAD', url: path, headers: { ...other.headers, ...TUS } })).statusCode, 404, 'HEAD: status only')
      assertErrorShape(t, await app.inject({ method: 'PATCH', url: path, headers: { ...other.headers, ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, payload: 'hello' }), 404, 'not_found')
      assertErrorShape(t, await app.inject({ method: 'DELETE', url: path, headers: { ...other.headers, ...TUS } }), 404, 'not_found')
      const upper = await app.inject({ method: 'HEAD', url: path.toUpperCase().replace('/UPLOADS/TUS/', '/uploads/tus/'), headers: { ...ed.headers, ...TUS } })
      t.equal(upper.statusCode, 200, 'an id in upper case names the same upload (ids are case-insensitive)')
      t.equal(upper.headers['upload-offset'], '0')
      // the other's own upload, with the victim's id smuggled into the query string: tus works on the checked id only
      const victimId = path.split('/').pop() ?? ''
      const own = await post({ ...other.headers, 'upload-length': '5', 'upload-metadata': metadataHeader({ title: 'mine' }) })
      const ownPath = new URL(String(own.headers.location)).pathname
      const smuggled = `${ownPath}?x=/${victimId}`
      const peek = await app.inject({ method: 'HEAD', url: smuggled, headers: { ...other.headers, ...TUS } })
      t.equal(peek.statusCode, 200)
      t.match(String(peek.headers['upload-metadata']), /title/, 'HEAD answers about the caller\'s own upload')
      t.equal(String(peek.headers['upload-metadata']).includes(Buffer.from('mine').toString('base64')), true)
      const write = await app.inject({ method: 'PATCH', url: smuggled, headers: { ...other.headers, ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, payload: 'evil' })
      t.equal(write.statusCode, 204, 'the bytes went to the caller\'s own upload')
      const ownHead = await app.inject({ method: 'HEAD', url: ownPath, headers: { ...other.headers, ...TUS } })
      t.equal(ownHead.headers['upload-offset'], '4')
      const head = await app.inject({ method: 'HEAD', url: path, headers: { ...ed.headers, ...TUS } })
      t.equal(head.statusCode, 200)
      t.equal(head.headers['upload-offset'], '0', 'nothing was written by the others')
      t.ok(head.headers['upload-expires'] === undefined || typeof head.headers['upload-expires'] === 'string')
      // a wrong offset: 409 (tus)
      const wrong = await app.inject({ method: 'PATCH', url: path, headers: { ...ed.headers, ...TUS, 'upload-offset': '3', 'content-type': 'application/offset+octet-stream' }, payload: 'lo' })
      t.equal(wrong.statusCode, 409)

      // a body that does not match the declared sha256: 400 checksum_mismatch, nothing kept
      const liar = await post({ ...ed.headers, 'upload-length': '5', 'upload-metadata': metadataHeader({ sha256: sha('other'), filetype: 'text/plain' }) })
      const liarPath = new URL(String(liar.headers.location)).pathname
      const done = await app.inject({ method: 'PATCH', url: liarPath, headers: { ...ed.headers, ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, payload: 'hello' })
      t.equal(done.statusCode, 400)
      t.equal((done.json() as { code: string }).code, 'checksum_mismatch', 'the error shape, from the last PATCH')
      const liarId = liarPath.split('/').pop() ?? ''
      t.equal(await app.storage.head(stagingKey(liarId)), null, 'the bytes are deleted')
      t.equal((await app.db.select().from(documents).where(eq(documents.id, liarId))).length, 0, 'no document')
      t.equal((await app.inject({ method: 'HEAD', url: liarPath, headers: { ...ed.headers, ...TUS } })).statusCode, 410, 'HEAD: status only')

      // tus-js-client sees the refusals as errors with the status
      const err = await tusUpload(Buffer.from('x'), { endpoint, headers: headers(viewer) }).catch((e: unknown) => e)
      t.equal(statusOf(err), 403, 'tus-js-client: 403 for a viewer')
    })

    t.test('termination (DELETE): the row is cancelled and nothing is left', async (t) => {
      const big = randomBytes(7 * 1024 * 1024)
      // One 6 MiB PATCH (a full part on S3), then stop and terminate.
      const url = await tusFirstChunk(big, { endpoint, headers: headers(ed), chunkSize: 6 * 1024 * 1024, metadata: { filename: 'gone.bin' } })
      const path = new URL(url).pathname
      const id = path.split('/').pop() ?? ''
      // 1 MiB more: on S3 an incomplete `.part` object (tus' own termination leaves it; Quire's does not)
      const more = await app.inject({ method: 'PATCH', url: path, headers: { ...ed.headers, ...TUS, 'upload-offset': String(6 * 1024 * 1024), 'content-type': 'application/offset+octet-stream' }, payload: big.subarray(6 * 1024 * 1024, 7 * 1024 * 1024 - 1) })
      t.equal(more.statusCode, 204)
      const head = await app.inject({ method: 'HEAD', url: path, headers: { ...ed.headers, ...TUS } })
      t.equal(head.headers['upload-offset'], String(7 * 1024 * 1024 - 1))
      if (driver === 's3') t.ok((await s3State(app)).objects.includes(`${stagingKey(id)}.part`), 'an incomplete part')
      const del = await app.inject({ method: 'DELETE', url: path, headers: { ...ed.headers, ...TUS } })
      t.equal(del.statusCode, 204)
      const [row] = await app.db.select().from(uploads).where(eq(uploads.id, id))
      t.equal(row?.status, 'cancelled')
      t.equal((await app.inject({ method: 'HEAD', url: path, headers: { ...ed.headers, ...TUS } })).statusCode, 410, 'HEAD: status only')
      if (driver === 'local') t.same(storedFiles(app.config.STORAGE_DIR).filter(f => f.includes(id)), [])
      else {
        const s = await s3State(app)
        t.same(s.objects.filter(k => k.includes(id)), [], 'no object')
        t.same(s.multipart.filter(k => k.includes(id)), [], 'the multipart upload was aborted')
      }
    })

    t.test('an expired half-finished upload leaves nothing behind after the sweep', async (t) => {
      const body = randomBytes(13 * 1024 * 1024)
      const url = await tusFirstChunk(body, { endpoint, headers: headers(ed), chunkSize: 6 * 1024 * 1024, metadata: { filename: 'late.bin' } })
      const path = new URL(url).pathname
      const id = path.split('/').pop() ?? ''
      // a 1 MiB PATCH more: on S3 an incomplete `.part` beside the multipart upload
      const more = await app.inject({ method: 'PATCH', url: path, headers: { ...ed.headers, ...TUS, 'upload-offset': String(6 * 1024 * 1024), 'content-type': 'application/offset+octet-stream' }, payload: body.subarray(6 * 1024 * 1024, 7 * 1024 * 1024) })
      t.equal(more.statusCode, 204)
      if (driver === 's3') {
        const s = await s3State(app)
        t.ok(s.multipart.includes(stagingKey(id)), 'a multipart upload is open')
        t.ok(s.objects.includes(`${stagingKey(id)}.info`), 'and its .info')
      } else {
        t.ok(storedFiles(app.config.STORAGE_DIR).includes(stagingKey(id)), 'a partial file')
      }
      const [row] = await app.db.select().from(uploads).where(eq(uploads.id, id))
      const expiresAt = row?.expiresAt ?? new Date()
      await sweep.process(app, { data: { now: new Date(expiresAt.getTime() + SWEEP_GRACE_MS + 1000).toISOString() } } as never)
      t.same(await app.db.select().from(uploads).where(eq(uploads.id, id)), [], 'the row is gone')
      if (driver === 'local') t.same(storedFiles(app.config.STORAGE_DIR).filter(f => f.includes(id)), [], 'no file, no .json')
      else {
        const s = await s3State(app)
        t.same(s.objects.filter(k => k.includes(id)), [], 'no object, .info or .part')
        t.same(s.multipart.filter(k => k.includes(id)), [], 'AbortMultipartUpload: no multipart upload left')
      }
      const keys = await app.redis.keys(`${app.config.REDIS_PREFIX}:tus:*${id}*`)
      t.same(keys, [], 'no Redis key left')
    })
  })
}
