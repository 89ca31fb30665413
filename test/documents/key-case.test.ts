import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { documentTags } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser, uniqueEmail } from '../helper.js'
import { createDocument, randomKey } from '../ingestion/helpers.js'

// Keys that JS compares exactly must compare the same way in MySQL (issue 18: "any other key
// compared in two places"): tags, idempotency keys, emails.

test('tags: JS and the database agree on what is one tag', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  // distinct for JS, equal for an accent-insensitive collation: used to fail the tag insert (500)
  const patch = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: ed.headers, payload: { tags: ['résumé', 'resume', 'straße', 'strasse'] } })
  t.equal(patch.statusCode, 200)
  t.same(patch.json().tags, ['résumé', 'resume', 'straße', 'strasse'])
  const rows = await app.db.select({ tag: documentTags.tag }).from(documentTags).where(eq(documentTags.documentId, doc.id))
  t.same(rows.map(r => r.tag).sort(), ['resume', 'résumé', 'strasse', 'straße'].sort())
  // one canonical form: NFC, trimmed, lower case; the filter uses the same form
  const nfd = 'Cafe\u0301'
  const again = await app.inject({ method: 'PATCH', url: `/documents/${doc.id}`, headers: ed.headers, payload: { tags: [nfd, ' café ', 'CAFÉ'] } })
  t.equal(again.statusCode, 200)
  t.same(again.json().tags, ['café'])
  const other = await createDocument(app, ed.id)
  t.equal((await app.inject({ method: 'PATCH', url: `/documents/${other.id}`, headers: ed.headers, payload: { tags: ['cafe'] } })).statusCode, 200)
  const byTag = async (tag: string) => (await app.inject({ method: 'GET', url: `/documents?tag=${encodeURIComponent(tag)}`, headers: ed.headers })).json().items.map((d: { id: string }) => d.id)
  t.same(await byTag(nfd), [doc.id], 'the filter finds the NFC tag from an NFD query, and not "cafe"')
  t.same(await byTag('CAFE'), [other.id], '"cafe" only')
})

test('idempotency keys are compared exactly, as the client sent them', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const a = await createDocument(app, ed.id)
  const b = await createDocument(app, ed.id)
  const key = `k-${randomKey()}`
  const first = await app.inject({ method: 'POST', url: `/documents/${a.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  t.equal(first.statusCode, 202)
  // another key (letter case differs): another request, not a reuse of the first key
  const second = await app.inject({ method: 'POST', url: `/documents/${b.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key.toUpperCase() }, payload: {} })
  t.equal(second.statusCode, 202)
  t.equal(second.json().documentId, b.id)
  t.not(second.json().id, first.json().id)
  const third = await app.inject({ method: 'POST', url: `/documents/${a.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key.toUpperCase() }, payload: {} })
  assertErrorShape(t, third, 409, 'idempotency_key_reused')
  const replay = await app.inject({ method: 'POST', url: `/documents/${a.id}/ingestions`, headers: { ...ed.headers, 'idempotency-key': key }, payload: {} })
  t.equal(replay.json().id, first.json().id)
})

test('emails: one canonical form for register, login, uniqueness and search', async (t) => {
  const app = await build(t)
  const admin = await createUser(app, 'admin')
  const email = uniqueEmail('Case')
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `  ${email.toUpperCase()} `, password: 'a long password 1' } })
  t.equal(reg.statusCode, 201)
  t.equal(reg.json().user.email, email.toLowerCase())
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/register', payload: { email: email.toLowerCase(), password: 'a long password 1' } }), 409, 'email_taken')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/users', headers: admin.headers, payload: { email: email.toUpperCase(), password: 'a long password 1', role: 'viewer' } }), 409, 'email_taken')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: email.toUpperCase(), password: 'a long password 1' } })).statusCode, 200)
  const found = await app.inject({ method: 'GET', url: `/users?q=${encodeURIComponent(email.toUpperCase())}`, headers: admin.headers })
  t.same(found.json().items.map((u: { email: string }) => u.email), [email.toLowerCase()], 'search by email ignores letter case')
})
