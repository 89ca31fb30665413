import { test } from 'tap'
import { and, eq } from 'drizzle-orm'
import { build, createUser, assertErrorShape } from '../helper.js'
import { auditEvents } from '../../drizzle/schema/index.js'
import { createDocument, share } from './helpers.js'

// Cancel and retry declare the permission they really need (ingestions:trigger, or
// ingestions:manage for anyone's), and the ingestion domain writes their audit rows.

test('retry and cancel declare ingestions:trigger or ingestions:manage, not ingestions:read', async (t) => {
  const app = await build(t)
  const doc = app.swagger() as { paths: Record<string, Record<string, { 'x-permission'?: string }>> }
  for (const action of ['retry', 'cancel']) {
    t.equal(doc.paths[`/ingestions/{id}/${action}`]?.post?.['x-permission'], 'ingestions:trigger or ingestions:manage', action)
  }
  t.equal(doc.paths['/ingestions/{id}']?.get?.['x-permission'], 'ingestions:read', 'reads still need ingestions:read')
})

test('any one of the listed permissions opens the route; the object rule still decides', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  // ingestions:manage without ingestions:trigger: cancels anyone's (it sees them all)
  const manager = await createUser(app, 'viewer', { grants: ['ingestions:manage'] })
  // ingestions:trigger taken away: not even their own, once they could see it
  const demoted = await createUser(app, 'editor')
  const doc = await createDocument(app, owner.id, { visibility: 'internal' })
  await share(app, doc.id, demoted.id, 'write')
  const trigger = async (headers: Record<string, string>) => (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers, payload: {} })).json().id as string

  const mine = await trigger(demoted.headers)
  t.ok(mine, 'a write share triggers')
  await app.inject({ method: 'PATCH', url: `/users/${demoted.id}`, headers: (await createUser(app, 'admin')).headers, payload: { revokes: ['ingestions:trigger'] } })
  const res = await app.inject({ method: 'POST', url: `/ingestions/${mine}/cancel`, headers: demoted.headers })
  assertErrorShape(t, res, 403, 'forbidden')

  const owners = await trigger(owner.headers)
  const cancelled = await app.inject({ method: 'POST', url: `/ingestions/${owners}/cancel`, headers: manager.headers })
  t.equal(cancelled.statusCode, 200, 'ingestions:manage alone is enough')
  t.equal(cancelled.json().status, 'cancelled')
  // a well-formed id nobody can see: 404 for a user without the permission too (existence does not leak)
  const viewer = await createUser(app, 'viewer')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/ingestions/0000000000000000000000000/cancel', headers: viewer.headers }), 404, 'not_found')
  assertErrorShape(t, await app.inject({ method: 'POST', url: `/ingestions/${owners}/retry`, headers: viewer.headers }), 403, 'forbidden')
})

test('cancel and retry leave their audit rows, with who, from where and which request', async (t) => {
  const app = await build(t)
  const owner = await createUser(app, 'editor')
  const doc = await createDocument(app, owner.id)
  const headers = { ...owner.headers, 'user-agent': 'route-gates-test/1' }
  const id = (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers, payload: {} })).json().id as string
  const cancel = await app.inject({ method: 'POST', url: `/ingestions/${id}/cancel`, headers })
  t.equal(cancel.statusCode, 200)
  const retry = await app.inject({ method: 'POST', url: `/ingestions/${id}/retry`, headers })
  t.equal(retry.statusCode, 202)
  for (const [action, res] of [['ingestion.cancel', cancel], ['ingestion.retry', retry]] as const) {
    const rows = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, action), eq(auditEvents.subject, `ingestion:${id}`)))
    t.equal(rows.length, 1, `${action}: one row`)
    t.match(rows[0], { actorId: owner.id, userAgent: 'route-gates-test/1', requestId: res.headers['x-request-id'], payload: { documentId: doc.id } }, action)
    t.ok(rows[0]?.ip, `${action}: the client address`)
  }
})
