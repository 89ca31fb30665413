import t from 'tap'
import { createHash } from 'node:crypto'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { uploads } from '../../drizzle/schema/index.js'
import { createUser, assertErrorShape, privateDatabase, type TestUser } from '../helper.js'
import { buildWith } from './helpers.js'
import sweep from '../../src/jobs/uploads-sweep.js'

// A database of this file's own: the uploads sweep it runs with a clock hours ahead would release
// the reservations and delete the pending uploads of the files running beside it.
const DATABASE_URL = await privateDatabase('presigned', t)

const sha = (b: string) => createHash('sha256').update(b).digest('hex')

interface Ticket { uploadId: string, method: 'PUT', url: string, headers: Record<string, string>, expiresAt: string }

for (const driver of ['local', 's3'] as const) {
  t.test(`${driver}: pre-signed upload end to end over real HTTP`, async (t) => {
    const app = await buildWith(t, driver, { DATABASE_URL, UPLOAD_MAX_BYTES: 10_000, UPLOAD_ALLOWED_TYPES: 'text/*,image/*' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const ed = await createUser(app, 'editor')

    const start = async (user: TestUser, body: Record<string, unknown>) => await app.inject({ method: 'POST', url: '/uploads', headers: user.headers, payload: body })
    // Local signed URLs point at PUBLIC_URL; this test's server listens on a random port.
    const target = (ticket: Ticket) => driver === 'local' ? ticket.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${port}`) : ticket.url
    const send = async (ticket: Ticket, body: string) => await fetch(target(ticket), { method: 'PUT', headers: ticket.headers, body })
    // S3 signs Content-Length, so real S3 refuses a body of another size at PUT time; the emulator does
    // not check signatures, which lets this test reach the server-side size check as well.
    const sendWrongSize = async (ticket: Ticket, body: string) => {
      const { 'content-length': _drop, ...headers } = ticket.headers
      return await fetch(target(ticket), { method: 'PUT', headers, body })
    }
    const complete = async (user: TestUser, id: string, body: Record<string, unknown> = {}) => await app.inject({ method: 'POST', url: `/uploads/${id}/complete`, headers: user.headers, payload: body })

    const content = 'Pre-signed hello.\nA second line.\n'
    const res = await start(ed, { filename: 'hello.txt', mimeType: 'text/plain', size: Buffer.byteLength(content), sha256: sha(content) })
    t.equal(res.statusCode, 201, res.body)
    const ticket = res.json() as Ticket
    t.equal(ticket.method, 'PUT')
    t.equal(ticket.headers['content-type'], 'text/plain')
    t.ok(Date.parse(ticket.expiresAt) > Date.now())
    if (driver === 's3') t.match(ticket.url, /X-Amz-Signature=/)
    else t.match(ticket.url, new RegExp(`^${app.config.PUBLIC_URL}/storage/`))

    assertErrorShape(t, await complete(ed, ticket.uploadId), 409, 'upload_incomplete')
    const put = await send(ticket, content)
    t.equal(put.status, 200, 'bytes accepted by the URL')
    const other = await createUser(app, 'editor')
    assertErrorShape(t, await complete(other, ticket.uploadId), 404, 'not_found')
    const done = await complete(ed, ticket.uploadId, { title: 'Via URL', tags: ['A', 'b'], visibility: 'internal' })
    t.equal(done.statusCode, 201, done.body)
    const doc = done.json()
    t.match(doc, { id: ticket.uploadId, title: 'Via URL', filename: 'hello.txt', mimeType: 'text/plain', size: Buffer.byteLength(content), sha256: sha(content), tags: ['a', 'b'], visibility: 'internal', status: 'ready', ownerId: ed.id })
    const dl = await app.inject({ url: `/documents/${doc.id}/content`, headers: ed.headers })
    t.equal(dl.body, content)
    assertErrorShape(t, await complete(ed, ticket.uploadId), 404, 'not_found')

    // wrong size: fails, and the object and the upload are gone
    const short = (await start(ed, { filename: 's.txt', mimeType: 'text/plain', size: 100 })).json() as Ticket
    t.equal((await sendWrongSize(short, 'only a few bytes')).status, 200)
    assertErrorShape(t, await complete(ed, short.uploadId), 400, 'size_mismatch')
    t.equal(await app.storage.head(`documents/${short.uploadId}/original`), null, 'object deleted')
    assertErrorShape(t, await complete(ed, short.uploadId), 404, 'not_found')

    // wrong sha256: same
    const liar = (await start(ed, { filename: 'l.txt', mimeType: 'text/plain', size: 5, sha256: sha('other') })).json() as Ticket
    t.equal((await send(liar, 'hello')).status, 200)
    assertErrorShape(t, await complete(ed, liar.uploadId), 400, 'checksum_mismatch')
    t.equal(await app.storage.head(`documents/${liar.uploadId}/original`), null, 'object deleted')
    assertErrorShape(t, await complete(ed, liar.uploadId), 404, 'not_found')

    // declared text, sent binary that is not allowed -> 415 and cleaned up
    const disguised = (await start(ed, { filename: 'x.txt', mimeType: 'text/plain', size: 4 })).json() as Ticket
    t.equal((await fetch(target(disguised), { method: 'PUT', headers: disguised.headers, body: new Uint8Array([0x25, 0x50, 0x44, 0x46]) })).status, 200)
    const pdf = await complete(ed, disguised.uploadId)
    assertErrorShape(t, pdf, 415, 'unsupported_media_type')
    t.equal(await app.storage.head(`documents/${disguised.uploadId}/original`), null)

    // refused up front
    assertErrorShape(t, await start(ed, { filename: 'big.txt', mimeType: 'text/plain', size: 10_001 }), 413, 'payload_too_large')
    assertErrorShape(t, await start(ed, { filename: 'a.pdf', mimeType: 'application/pdf', size: 10 }), 415, 'unsupported_media_type')
    assertErrorShape(t, await start(ed, { filename: 'a.txt', mimeType: 'text/plain', size: 10, extra: 1 }), 400, 'validation_failed')
    const viewer = await createUser(app, 'viewer')
    assertErrorShape(t, await start(viewer, { filename: 'a.txt', mimeType: 'text/plain', size: 10 }), 403, 'forbidden')
    assertErrorShape(t, await complete(ed, 'not-an-id'), 404, 'not_found')

    // expired: 410, then the sweeper removes the row and the bytes
    const late = (await start(ed, { filename: 'late.txt', mimeType: 'text/plain', size: 4 })).json() as Ticket
    t.equal((await send(late, 'late')).status, 200)
    await app.db.update(uploads).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(uploads.id, late.uploadId))
    assertErrorShape(t, await complete(ed, late.uploadId), 410, 'upload_expired')
    await runSweep(app, new Date(Date.now() + 3600_000))
    t.same(await app.db.select().from(uploads).where(eq(uploads.id, late.uploadId)), [], 'upload row swept')
    t.equal(await app.storage.head(`uploads/${late.uploadId}`), null, 'staged object swept')
  })
}

async function runSweep (app: FastifyInstance, now: Date): Promise<void> {
  await sweep.process(app, { data: { now: now.toISOString() } } as never)
}
