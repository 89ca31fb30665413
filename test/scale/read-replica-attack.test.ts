import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { build, createUser, type TestUser } from '../helper.js'
import { eventually, replicaDeployment } from '../helpers/replica.js'
import { upload } from '../documents/helpers.js'
import { openAttempt } from '../../src/jobs/ingestion/attempt.js'
import { eventsChannel, type StatusMessage } from '../../src/domain/ingestion-events.js'
import { covers, rank } from '../../src/db/gtid.js'
import { redisPosition } from '../../src/db/replica-fence.js'
import { sendEvent } from '../../src/domain/webhooks/deliver.js'
import { newId } from '../../src/lib/ids.js'

/*
 * Writes whose answer (or announcement) reaches a client before their position is published
 * (src/db/replica-fence.ts): a list that comes after must still have them, though the replica
 * lags and the position published before the write is one the replica has reached. A real
 * MariaDB primary and replica of this file's own on 127.0.0.1:7390/7391.
 */
// a takes the write, b the list (two API processes on one primary, one replica, one Redis).
const { rep, overrides, a, b } = await replicaDeployment(t, { primaryPort: 7390, replicaPort: 7391, tag: 'replica-attack' })
const admin = await createUser(a, 'admin')

const items = async (app: FastifyInstance, user: TestUser, url: string): Promise<Array<Record<string, unknown>>> => {
  const res = await app.inject({ method: 'GET', url, headers: user.headers })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  return (res.json() as { items: Array<Record<string, unknown>> }).items
}
const replicaCount = async (sql: string): Promise<number> => Number((await rep.replica.query(sql) as Array<{ n: number }>)[0]?.n)

/**
 * From here on the replica lags: it has applied everything written so far, the newest position
 * published is one b has seen the replica reach, and then the replica stops applying.
 */
async function lagFromHere (t: Test): Promise<void> {
  await rep.caughtUp()
  await a.reads.afterWrite()
  await eventually('b reads the replica at the published position', async () => {
    const n = b.reads.stats().replica
    await items(b, admin, '/audit-events?limit=1')
    return b.reads.stats().replica > n
  })
  await rep.pause()
  t.teardown(async () => {
    await rep.resume().catch(() => undefined)
    await rep.caughtUp()
  })
}

t.test('a failed login (401) writes its audit row: the audit list after the answer has it', async (t) => {
  const victim = await createUser(a, 'viewer')
  await lagFromHere(t)
  const res = await a.inject({ method: 'POST', url: '/auth/login', payload: { email: victim.email, password: 'not-the-password' } })
  t.equal(res.statusCode, 401)
  const query = `SELECT COUNT(*) AS n FROM quire.audit_events WHERE action = 'auth.login_failed' AND subject = 'user:${victim.id}'`
  t.equal(await replicaCount(query), 0, 'the replica has not applied the audit row')
  const listed = await items(b, admin, `/audit-events?action=auth.login_failed&subject=user:${victim.id}`)
  t.equal(listed.length, 1, 'the failed login is in the audit list')
})

t.test('a download (GET) writes its audit row: the audit list after the bytes came has it', async (t) => {
  const owner = await createUser(a, 'editor')
  const up = await upload(a, owner.headers, { filename: 'd.txt', contentType: 'text/plain', data: 'download me' })
  t.equal(up.statusCode, 201)
  const id = (up.json() as { id: string }).id
  await lagFromHere(t)
  const res = await a.inject({ method: 'GET', url: `/documents/${id}/content`, headers: owner.headers })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'download me')
  t.equal(await replicaCount(`SELECT COUNT(*) AS n FROM quire.audit_events WHERE action = 'document.download' AND subject = 'document:${id}'`), 0, 'the replica has not applied the audit row')
  const listed = await items(b, admin, `/audit-events?action=document.download&subject=document:${id}`)
  t.equal(listed.length, 1, 'the download is in the audit list')
})

t.test('an ingestion status announced to SSE clients (the worker starts an attempt) is in the list after the message', async (t) => {
  const owner = await createUser(a, 'editor')
  const up = await upload(a, owner.headers, { filename: 'i.txt', contentType: 'text/plain', data: 'ingest me' })
  t.equal(up.statusCode, 201)
  const docId = (up.json() as { id: string }).id
  const trig = await a.inject({ method: 'POST', url: `/documents/${docId}/ingestions`, headers: owner.headers, payload: {} })
  t.ok(trig.statusCode === 201 || trig.statusCode === 202, `ingestion triggered (${trig.statusCode})`)
  const ingestionId = (trig.json() as { id: string }).id
  t.equal((await items(b, owner, `/ingestions?documentId=${docId}`))[0]?.status, 'queued')

  // An SSE client's view: the status messages every API process relays.
  const sub = (a.redis as Redis).duplicate({ enableOfflineQueue: true })
  t.teardown(() => { sub.disconnect() })
  const seen: StatusMessage[] = []
  sub.on('message', (_channel: string, raw: string) => { seen.push(JSON.parse(raw) as StatusMessage) })
  await sub.subscribe(eventsChannel(a.redisKey))

  await lagFromHere(t)
  // The dispatch job's first step (the job then calls the backend, which may take long, and only
  // publishes the position when it ends).
  const opened = await openAttempt(a, ingestionId)
  t.equal(opened?.kind, 'started')
  await eventually('the SSE client is told the ingestion runs', async () => seen.some(m => m.id === ingestionId && m.status === 'running'))
  t.equal(await replicaCount(`SELECT COUNT(*) AS n FROM quire.ingestions WHERE id = '${ingestionId}' AND status = 'running'`), 0, 'the replica has not applied it')
  const listed = await items(b, owner, `/ingestions?documentId=${docId}`)
  t.equal(listed[0]?.status, 'running', 'the list says running, as the message did')
})

t.test('MySQL tagged GTIDs (8.3+): a newer position is never dropped for an older one', async (t) => {
  const u = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
  // gtid_executed once a transaction ran with a tag (SET gtid_next = 'AUTOMATIC:<tag>').
  const older = `${u}:1-100`
  const newer = `${u}:1-101:audit:1`
  t.ok(covers('mysql', newer, older), 'the newer set covers the older')
  t.notOk(covers('mysql', older, newer), 'the older does not cover the newer')
  t.ok(rank('mysql', newer) > rank('mysql', older), 'and ranks above it')
  t.ok(covers('mysql', `${u}:1-101:Audit:1-2`, newer), 'tags are case-insensitive')
  t.notOk(covers('mysql', `${u}:1-101:other:1`, newer), 'another tag is another source')

  // Whatever the position looks like, the published one is never older than the last one stored.
  const key = `${overrides.REDIS_PREFIX}:attack:position`
  t.teardown(async () => { await a.redis.del(key) })
  const published = redisPosition(a.redis, key)
  await published.set('mysql', older)
  await published.set('mysql', newer)
  t.equal(await published.get(), newer, 'the newer position is published')
  const odd = `${u}:1-102:audit:1:???`
  await published.set('mysql', odd)
  t.ok([null, odd].includes(await published.get()), 'an unparsable position does not leave an older one behind (lists wait for it, or ask the primary)')
})

t.test('a process without DATABASE_REPLICA_URL (a worker set up for writes only, an older version during a rolling deploy) revokes a share: lists elsewhere drop it at once', async (t) => {
  const c = await build(t, { ...overrides, DATABASE_REPLICA_URL: '' })
  const owner = await createUser(a, 'editor')
  const grantee = await createUser(a, 'viewer')
  const up = await upload(a, owner.headers, { filename: 's.txt', contentType: 'text/plain', data: 'shared' })
  const id = (up.json() as { id: string }).id
  t.equal((await a.inject({ method: 'PUT', url: `/documents/${id}/shares/${grantee.id}`, headers: owner.headers, payload: { access: 'read' } })).statusCode, 200)
  await lagFromHere(t)
  t.equal((await c.inject({ method: 'DELETE', url: `/documents/${id}/shares/${grantee.id}`, headers: owner.headers })).statusCode, 204)
  const listed = (await items(b, grantee, '/documents?limit=100')).map(d => d.id)
  t.notOk(listed.includes(id), 'the revoked share is gone from the grantee\'s list')
})

t.test('a webhook goes out after the position of its event is published: a receiver that lists on it finds it', async (t) => {
  // The event's write, committed by a writer that has not published yet (a job still running).
  const [rows] = await a.db.$client.query('SELECT @@GLOBAL.gtid_binlog_pos AS p') as unknown as [Array<{ p: string }>]
  await a.db.$client.query("INSERT INTO webhook_events (id, type, subject, data, created_at) VALUES (?, 'document.created', 'document:x', '{}', NOW(3))", [newId()])
  const [after] = await a.db.$client.query('SELECT @@GLOBAL.gtid_binlog_pos AS p') as unknown as [Array<{ p: string }>]
  t.not(after[0]!.p, rows[0]!.p, 'the write moved the primary')
  const key = `${overrides.REDIS_PREFIX}:replica:position`
  // The receiver looks up what a list of its would wait for, as it receives the event.
  let seen: string | null = null
  const receiver = createServer((req, res) => {
    a.redis.get(key).then((v) => { seen = v === null ? null : v.slice(v.indexOf('|') + 1) }).finally(() => { res.writeHead(204).end() })
  })
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { receiver.close() })
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
  const secret = `whsec_${randomBytes(24).toString('base64')}`
  const deps = { ...a.webhooks.deliver, config: { ...a.webhooks.deliver.config, WEBHOOK_ALLOW_PRIVATE: true } }
  const event = { id: newId(), type: 'document.created', subject: 'document:x', data: {}, seq: null, createdAt: new Date() } as unknown as Parameters<typeof sendEvent>[2]
  const result = await sendEvent(deps, { url, webhook: new Webhook(secret) }, event)
  t.equal(result.statusCode, 204)
  t.ok(seen !== null && covers('mariadb', seen, after[0]!.p), `the published position (${String(seen)}) covers the event's write (${after[0]!.p})`)
})

t.test('requests turned away before a handler (no such route, no credentials, a bad body) do not ask the primary for its position', async (t) => {
  const before = a.reads.stats().positions
  for (let i = 0; i < 5; i++) {
    t.equal((await a.inject({ method: 'POST', url: '/no-such-route' })).statusCode, 404)
    t.equal((await a.inject({ method: 'DELETE', url: `/documents/${newId()}` })).statusCode, 401)
    t.equal((await a.inject({ method: 'POST', url: '/auth/login', payload: { email: 'not an email' } })).statusCode, 400)
  }
  t.equal(a.reads.stats().positions, before, 'no position query')
})
