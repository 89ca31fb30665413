import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import { auditEvents, ingestionEvents } from '../../drizzle/schema/index.js'
import { build, createUser } from '../helper.js'
import { createDocument, ingestionRow, postCallback } from '../ingestion/helpers.js'

// The hot writes (the ingestion trigger, the worker's and callbacks' transitions) go to MySQL as
// multi-statement text on the batch pool (src/db.ts sqlAtomic/sqlAtomicGrouped). Their values
// are `?` placeholders formatted by mysql2, never spliced: every user-controlled field that
// reaches those statements is stored literally, and nothing after it runs.
test('hostile values in every field of the batched writes are stored literally', async (t) => {
  const app = await build(t)
  const canary = `canary_${randomBytes(4).toString('hex')}`
  await app.db.$client.query(`CREATE TABLE ${canary} (id INT PRIMARY KEY)`)
  t.teardown(async () => { await app.db.$client.query(`DROP TABLE IF EXISTS ${canary}`) })
  const inject = `'); DROP TABLE ${canary}; -- \\' \\\\ \\"; COMMIT; SELECT 1 /*`
  const tight = `');DROP/**/TABLE/**/${canary};--\\'` // printable ASCII, no spaces (the Idempotency-Key pattern)
  const ed = await createUser(app, 'editor')
  const doc = await createDocument(app, ed.id)

  // unkeyed trigger: the grouped transaction (options, User-Agent into the audit row)
  const headers = { ...ed.headers, 'user-agent': inject }
  const res = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers, payload: { options: { [inject]: inject, n: [inject] } } })
  t.equal(res.statusCode, 202)
  const grouped = res.json().id as string
  t.same((await ingestionRow(app, grouped))!.options, { [inject]: inject, n: [inject] }, 'options stored as given')
  const [audit] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'ingestion.trigger'), eq(auditEvents.subject, `ingestion:${grouped}`)))
  t.equal(audit?.userAgent, inject, 'User-Agent stored as given')

  // keyed trigger: the single transaction (the key)
  const keyed = await app.inject({ method: 'POST', url: `/documents/${doc.id}/ingestions`, headers: { ...headers, 'idempotency-key': tight }, payload: {} })
  t.equal(keyed.statusCode, 202)
  t.equal((await ingestionRow(app, keyed.json().id))!.idempotencyKey, tight, 'Idempotency-Key stored as given')

  // a callback's transition: error and result into the row and its event
  const cb = await postCallback(app, grouped, { status: 'failed', error: inject, result: { [inject]: inject } })
  t.equal(cb.statusCode, 200)
  const row = await ingestionRow(app, grouped)
  t.equal(row!.lastError, inject)
  t.same(row!.result, { [inject]: inject })
  const events = await app.db.select().from(ingestionEvents).where(eq(ingestionEvents.ingestionId, grouped))
  t.ok(events.some(e => e.message === `callback: failed: ${inject}`), 'event message stored as given')

  const [tables] = await app.db.$client.query('SHOW TABLES LIKE ?', [canary]) as unknown as [unknown[]]
  t.equal(tables.length, 1, 'the canary table is still there')
  const keys = await app.redis.keys(app.redisKey('ingestion-callback', '*'))
  if (keys.length > 0) await app.redis.del(...keys)
})
