import { test } from 'tap'
import { assertErrorShape, build, createUser } from '../helper.js'
import { createDocument } from './helpers.js'
import { callbackUrl, signedHeaders, signedPath } from '../../src/domain/ingestion-signing.js'

// The replay key is kept in Redis (exact comparison) while the row is found in MySQL: the same
// signed callback sent again with the ingestion id in upper case must still count as a replay.
test('callback replay with the ingestion id in another letter case is refused', async (t) => {
  const app = await build(t)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)
  const id = (await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: ed.headers, payload: {} })).json().id as string
  const sent = JSON.stringify({ status: 'failed' })
  const headers = { 'content-type': 'application/json', ...signedHeaders(app.config.INGESTION_SECRET, { method: 'POST', path: signedPath(callbackUrl(app.config.PUBLIC_URL, id)) }, sent) }
  const first = await app.inject({ method: 'POST', url: `/ingestions/${id}/callback`, headers, payload: sent })
  t.equal(first.statusCode, 200)
  t.same(first.json(), { id, status: 'failed', changed: true })
  for (const variant of [id.toUpperCase(), id.slice(0, 8).toUpperCase() + id.slice(8)]) {
    const replay = await app.inject({ method: 'POST', url: `/ingestions/${variant}/callback`, headers, payload: sent })
    assertErrorShape(t, replay, 409, 'callback_replayed')
  }
})
