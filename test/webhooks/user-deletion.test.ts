import { test } from 'tap'
import { createUser } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { apiAndWorker, newDocument, receiver, register, streamOf, verify } from './helpers.js'

test('a user\'s deletion announces what it does to their documents: trashed, or updated with the new owner', async (t) => {
  const { app } = await apiAndWorker(t)
  const admin = await createUser(app, 'admin')
  const gone = await createUser(app, 'editor')
  const leaving = await createUser(app, 'editor')
  const heir = await createUser(app, 'editor')
  const rx = await receiver(t)
  const hook = await register(t, app, admin, rx.url(), ['document.trashed', 'document.updated', 'user.deleted'])

  const trashedDocs = [await newDocument(app, gone, 'a.txt'), await newDocument(app, gone, 'b.txt')]
  const already = await newDocument(app, gone, 'c.txt')
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${already}`, headers: gone.headers })).statusCode, 204)
  const moved = [await newDocument(app, leaving, 'd.txt'), await newDocument(app, leaving, 'e.txt')]

  t.equal((await app.inject({ method: 'DELETE', url: `/users/${gone.id}`, headers: admin.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${leaving.id}?transferTo=${heir.id}`, headers: admin.headers })).statusCode, 204)

  for (const id of trashedDocs) {
    const [e] = await eventually(async () => { const s = streamOf(rx.received, id); return s.length >= 1 ? s : null }, 30_000)
    t.equal(e!.body.type, 'document.trashed', `document ${id.slice(-4)} trashed`)
    // created = 1, trashed = 2: the event counts in the document's sequence.
    t.match(e!.body.data, { id, ownerId: gone.id, sequence: 2 })
    t.ok(typeof e!.body.data.deletedAt === 'string', 'as the API returns it: in the trash')
    t.doesNotThrow(() => verify(hook.secret, e!))
  }
  for (const id of moved) {
    const [e] = await eventually(async () => { const s = streamOf(rx.received, id); return s.length >= 1 ? s : null }, 30_000)
    t.equal(e!.body.type, 'document.updated')
    t.match(e!.body.data, { id, ownerId: heir.id, sequence: 2 }, 'with its new owner')
  }
  await eventually(async () => rx.received.filter(r => r.body.type === 'user.deleted').length >= 2, 30_000)
  const [rows] = await app.db.$client.query('SELECT type FROM webhook_events WHERE subject = ? ORDER BY seq', [`document:${already}`]) as unknown as [Array<{ type: string }>]
  t.same(rows.map(r => r.type), ['document.created', 'document.trashed'], 'a document already in the trash: nothing more to announce')
})
