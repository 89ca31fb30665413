import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { uploads } from '../../drizzle/schema/index.js'
import { createUser, assertErrorShape, privateDatabase, type TestUser } from '../helper.js'
import { buildWith } from './helpers.js'
import sweep from '../../src/jobs/uploads-sweep.js'
import { originalKey } from '../../src/domain/documents.js'
import { stagingKey } from '../../src/domain/upload-staging.js'

// A database of this file's own: the uploads sweep it runs with a clock hours ahead would release
// the reservations and delete the pending uploads of the files running beside it.
const DATABASE_URL = await privateDatabase('staging', t)

// issue 18: a pre-signed upload URL stayed usable after complete, and a second PUT replaced the
// finished document's bytes. Bytes now land on a staging key; only complete moves them.

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')

interface Ticket { uploadId: string, url: string, headers: Record<string, string> }

async function setup (t: Test, driver: 'local' | 's3') {
  const app = await buildWith(t, driver, { DATABASE_URL })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const ed = await createUser(app, 'editor')
  // Local signed URLs point at PUBLIC_URL; this test's server listens on a random port.
  const target = (ticket: Ticket) => driver === 'local' ? ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`) : ticket.url
  const start = async (user: TestUser, content: string) => {
    const res = await app.inject({ method: 'POST', url: '/uploads', headers: user.headers, payload: { filename: 'a.txt', mimeType: 'text/plain', size: Buffer.byteLength(content), sha256: sha(content) } })
    t.equal(res.statusCode, 201, res.body)
    return res.json() as Ticket
  }
  const put = async (ticket: Ticket, body: string, headers: Record<string, string> = ticket.headers) => await fetch(target(ticket), { method: 'PUT', headers, body })
  const complete = async (user: TestUser, id: string) => await app.inject({ method: 'POST', url: `/uploads/${id}/complete`, headers: user.headers, payload: {} })
  const content = async (user: TestUser, id: string) => {
    const res = await app.inject({ url: `/documents/${id}/content`, headers: user.headers })
    t.equal(res.statusCode, 200)
    return res.body
  }
  return { app, ed, target, start, put, complete, content }
}

async function runSweep (app: FastifyInstance, now = new Date()): Promise<Record<string, unknown>> {
  return await sweep.process(app, { data: { now: now.toISOString() } } as never) as Record<string, unknown>
}

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: the URL writes a staging key; after complete a second PUT cannot change the document`, async (t) => {
    const { app, ed, start, put, complete, content } = await setup(t, driver)
    const original = 'the real content\n'
    const ticket = await start(ed, original)
    if (driver === 's3') t.match(ticket.url, new RegExp(`/uploads/${ticket.uploadId}\\?`), 'the pre-signed URL names the staging key')
    t.equal((await put(ticket, original)).status, 200)
    t.same(await app.storage.head(stagingKey(ticket.uploadId)), { size: original.length }, 'bytes wait on the staging key')
    t.equal(await app.storage.head(originalKey(ticket.uploadId)), null, 'not on the document key')
    const done = await complete(ed, ticket.uploadId)
    t.equal(done.statusCode, 201, done.body)
    t.equal(await app.storage.head(stagingKey(ticket.uploadId)), null, 'the staging object is gone after complete')

    const evil = 'REPLACED!!!!!!!!\n'
    t.equal(evil.length, original.length, 'same length: only the content check would notice')
    const late = await put(ticket, evil)
    if (driver === 'local') {
      t.equal(late.status, 409, 'local storage refuses the late PUT')
      t.match(await late.json(), { code: 'upload_completed' })
      t.equal(await app.storage.head(stagingKey(ticket.uploadId)), null, 'and stores nothing')
    } else {
      // S3 cannot be told: the late PUT lands on the staging key, which nothing reads.
      t.equal(late.status, 200)
      t.same(await app.storage.head(stagingKey(ticket.uploadId)), { size: evil.length })
      t.match(await runSweep(app), { strays: 1 }, 'the sweep deletes it')
      t.equal(await app.storage.head(stagingKey(ticket.uploadId)), null)
    }
    t.equal(await content(ed, ticket.uploadId), original, 'the document still has its bytes')
    const doc = (await app.inject({ url: `/documents/${ticket.uploadId}`, headers: ed.headers })).json()
    t.match(doc, { sha256: sha(original), size: original.length })
    t.equal(sha(await content(ed, ticket.uploadId)), doc.sha256, 'and they match the recorded sha256')
  })

  t.test(`${driver}: a cancelled upload's URL writes nothing a complete would use`, async (t) => {
    const { app, ed, start, put, complete } = await setup(t, driver)
    const ticket = await start(ed, 'cancel me')
    t.equal((await put(ticket, 'cancel me')).status, 200)
    const other = await createUser(app, 'editor')
    assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/uploads/${ticket.uploadId}`, headers: other.headers }), 404, 'not_found')
    t.equal((await app.inject({ method: 'DELETE', url: `/uploads/${ticket.uploadId}`, headers: ed.headers })).statusCode, 204)
    t.equal(await app.storage.head(stagingKey(ticket.uploadId)), null, 'its bytes are deleted')
    assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/uploads/${ticket.uploadId}`, headers: ed.headers }), 404, 'not_found')
    const late = await put(ticket, 'cancel me')
    if (driver === 'local') {
      t.equal(late.status, 410)
      t.match(await late.json(), { code: 'upload_cancelled' })
    } else {
      t.equal(late.status, 200, 'S3 takes it, on the staging key')
    }
    assertErrorShape(t, await complete(ed, ticket.uploadId), 404, 'not_found')
    await runSweep(app)
    t.equal(await app.storage.head(stagingKey(ticket.uploadId)), null, 'nothing left after the sweep')
    t.equal(await app.storage.head(originalKey(ticket.uploadId)), null)
    // The row is kept (for the 410) until the sweep after its expiry.
    await runSweep(app, new Date(Date.now() + 2 * 3600_000))
    t.same(await app.db.select().from(uploads).where(eq(uploads.id, ticket.uploadId)), [], 'row swept after its expiry')
  })
}

t.test('local: expired, discarded and wrong-type PUTs are refused', async (t) => {
  const { app, ed, start, put, target, complete } = await setup(t, 'local')

  const expired = await start(ed, 'late')
  await app.db.update(uploads).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(uploads.id, expired.uploadId))
  const res = await put(expired, 'late')
  t.equal(res.status, 410, 'the token is still valid, the upload is not')
  t.match(await res.json(), { code: 'upload_expired' })
  t.equal(await app.storage.head(stagingKey(expired.uploadId)), null)

  const liar = await start(ed, 'hello')
  t.equal((await put(liar, 'HELLO')).status, 200)
  assertErrorShape(t, await complete(ed, liar.uploadId), 400, 'checksum_mismatch')
  const again = await put(liar, 'hello')
  t.equal(again.status, 410, 'a discarded upload takes no more bytes')
  t.match(await again.json(), { code: 'upload_cancelled' })

  // issue 23: the signed Content-Type is enforced, as S3 does for a signed header.
  const typed = await start(ed, 'typed')
  const wrong = await put(typed, 'typed', { 'content-type': 'text/html' })
  t.equal(wrong.status, 403)
  t.match(await wrong.json(), { code: 'content_type_mismatch' })
  const none = await fetch(target(typed), { method: 'PUT', body: new TextEncoder().encode('typed') })
  t.equal(none.status, 403, 'no Content-Type at all is a mismatch too')
  t.equal(await app.storage.head(stagingKey(typed.uploadId)), null, 'nothing stored')
  t.equal((await put(typed, 'typed', { 'content-type': 'Text/Plain' })).status, 200, 'media types compare case-insensitively')
  t.equal((await complete(ed, typed.uploadId)).statusCode, 201)
})

t.test('local: a PUT still streaming when complete runs cannot change the document', async (t) => {
  const { app, ed, start, put, target, complete, content } = await setup(t, 'local')
  const original = 'first bytes'
  const ticket = await start(ed, original)
  t.equal((await put(ticket, original)).status, 200)

  // A second PUT of the same URL starts streaming, and is still open while complete runs.
  let push!: (s: string | null) => void
  const body = new ReadableStream<Uint8Array>({
    start (controller) {
      push = (s) => { if (s === null) controller.close(); else controller.enqueue(new TextEncoder().encode(s)) }
    },
  })
  const racing = fetch(target(ticket), { method: 'PUT', headers: { 'content-type': 'text/plain' }, body, duplex: 'half' } as RequestInit)
  push('other')
  await new Promise(resolve => setTimeout(resolve, 200))
  const done = await complete(ed, ticket.uploadId)
  t.equal(done.statusCode, 201, done.body)
  push(' bytes')
  push(null)
  const late = await racing
  t.equal(late.status, 409, 'the PUT that finished after complete is refused')
  t.equal(await app.storage.head(stagingKey(ticket.uploadId)), null, 'and its bytes deleted')
  t.equal(await content(ed, ticket.uploadId), original)
  t.match((await app.inject({ url: `/documents/${ticket.uploadId}`, headers: ed.headers })).json(), { sha256: sha(original), size: original.length })
})
