import t from 'tap'
import { testConfig, createUser, assertErrorShape, type TestUser } from '../helper.js'
import { buildApp } from '../../src/build.js'
import { createDocument, share, openSse, freePort } from './helpers.js'

// Ingestion visibility follows the document rule exactly: an ingestion is there for a user when
// its document is (GET /documents/:id answers 200: documents:read, owner/internal/share, and in
// the trash only for those who may restore it), through every read path: the single read (with
// its events and result), the list (filtered or not), the SSE stream, cancel and retry.
// ingestions:manage (admin) sees all, as the contract says.
const port = await freePort()
const app = await buildApp(testConfig({ PUBLIC_URL: `http://127.0.0.1:${port}` }))
t.teardown(async () => await app.close())
await app.listen({ port, host: '127.0.0.1' })

const owner = await createUser(app, 'editor')
const writer = await createUser(app, 'editor')
const reader = await createUser(app, 'viewer')
const colleague = await createUser(app, 'editor')
const revoked = await createUser(app, 'editor', { revokes: ['documents:read'] })
const admin = await createUser(app, 'admin')
const actors: Record<string, TestUser> = { owner, writer, reader, colleague, revoked, admin }

interface Case { name: string, docId: string, ingestionId: string }
const cases: Case[] = []
for (const visibility of ['private', 'internal'] as const) {
  for (const trashed of [false, true]) {
    const doc = await createDocument(app, owner.id, { visibility })
    await share(app, doc.id, writer.id, 'write')
    await share(app, doc.id, reader.id, 'read')
    await share(app, doc.id, revoked.id, 'write')
    const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: owner.headers, payload: {} })
    // setup, not assertions: an assertion on the root test before its subtests would end it
    if (res.statusCode !== 202) throw new Error(`trigger: ${res.statusCode} ${res.body}`)
    if (trashed && (await app.inject({ method: 'DELETE', url: `/documents/${doc.id}`, headers: owner.headers })).statusCode !== 204) throw new Error('trash')
    cases.push({ name: `${visibility}${trashed ? ', trashed' : ''}`, docId: doc.id, ingestionId: res.json().id })
  }
}

const listed = async (u: TestUser, query: string): Promise<string[]> => {
  const res = await app.inject({ method: 'GET', url: `/ingestions?limit=100${query}`, headers: u.headers })
  if (res.statusCode !== 200) throw new Error(`list: ${res.statusCode} ${res.body}`)
  return res.json().items.map((i: { id: string }) => i.id)
}

for (const [who, u] of Object.entries(actors)) {
  t.test(`${who}: ingestions visible exactly when the document is`, async (t) => {
    const all = await listed(u, '')
    for (const c of cases) {
      const docVisible = (await app.inject({ method: 'GET', url: `/documents/${c.docId}`, headers: u.headers })).statusCode === 200
      const visible = docVisible || who === 'admin'
      const one = await app.inject({ method: 'GET', url: `/ingestions/${c.ingestionId}`, headers: u.headers })
      if (visible) {
        t.equal(one.statusCode, 200, `${c.name}: read`)
      } else {
        assertErrorShape(t, one, 404, 'not_found')
        t.notMatch(one.body, c.docId, `${c.name}: nothing of it leaks`)
      }
      t.equal(all.includes(c.ingestionId), visible, `${c.name}: in the list`)
      t.equal((await listed(u, `&documentId=${c.docId}`)).includes(c.ingestionId), visible, `${c.name}: in the list by document`)
      const sse = openSse(`http://127.0.0.1:${port}`, c.ingestionId, u.headers)
      t.equal(await sse.status, visible ? 200 : 404, `${c.name}: event stream`)
      sse.close()
      await sse.done.catch(() => undefined)
      if (!visible) {
        // not 403: an invisible ingestion does not reveal that it exists
        for (const action of ['cancel', 'retry']) {
          assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${c.ingestionId}/${action}`, headers: u.headers }), 404, 'not_found')
        }
      }
    }
  })
}

t.test('the matrix covers both outcomes for trashed documents', async (t) => {
  const trashed = cases.filter(c => c.name.endsWith('trashed'))
  for (const c of trashed) {
    t.equal((await app.inject({ method: 'GET', url: `/ingestions/${c.ingestionId}`, headers: writer.headers })).statusCode, 200, `${c.name}: a write share may restore, so it sees`)
    t.equal((await app.inject({ method: 'GET', url: `/ingestions/${c.ingestionId}`, headers: reader.headers })).statusCode, 404, `${c.name}: a read share may not`)
  }
  t.same(await listed(revoked, ''), [], 'documents:read revoked: nothing listed')
})
