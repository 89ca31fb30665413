import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { build, createUser, testPrefix, type TestUser } from '../helper.js'
import { eventually, replicaDeployment } from '../helpers/replica.js'
import { createDb, createPool, type Db } from '../../src/db.js'
import { replicaRouter } from '../../src/db/replica.js'
import { upload } from '../documents/helpers.js'

/*
 * DATABASE_REPLICA_URL against a real MariaDB primary and replica (GTID replication) of this file's
 * own, on 127.0.0.1:3407/3408 (scripts/mariadb-replica.ts): lists read the replica once it caught up
 * with the primary, so a writer always lists its own writes and a lagging replica never serves a
 * stale authorization; a dead replica sends the lists to the primary.
 */
// a takes the write, b the list (two API processes on one primary, one replica, one Redis).
const { rep, overrides, a, b } = await replicaDeployment(t, { primaryPort: 3407, replicaPort: 3408, tag: 'replica' })

const ids = (res: { json: () => unknown }): string[] => (res.json() as { items: Array<{ id: string }> }).items.map(d => d.id)
const list = async (app: FastifyInstance, user: TestUser, url = '/documents?limit=100'): Promise<string[]> => {
  const res = await app.inject({ method: 'GET', url, headers: user.headers })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  return ids(res)
}
const create = async (app: FastifyInstance, user: TestUser, visibility = 'private'): Promise<string> => {
  const res = await upload(app, user.headers, { filename: 'r.txt', contentType: 'text/plain', data: `replica ${Math.random()}` }, [['visibility', visibility]])
  if (res.statusCode !== 201) throw new Error(`upload: ${res.statusCode} ${res.body}`)
  return (res.json() as { id: string }).id
}
const ready = async (app: FastifyInstance): Promise<{ status: string, checks: Record<string, string>, warnings?: string[] }> =>
  (await app.inject({ method: 'GET', url: '/health/ready' })).json()

t.test('a document created is in its creator\'s very next list, every time, though the lists read the replica', async (t) => {
  const owner = await createUser(a, 'editor')
  t.equal((await ready(a)).checks.replica, 'ok', '/health/ready: replica ok')
  const before = { a: a.reads.stats(), b: b.reads.stats() }
  let missing = 0
  const rounds = 40
  for (let i = 0; i < rounds; i++) {
    const writer = i % 2 === 0 ? a : b
    const reader = i % 4 < 2 ? a : b // the same process and the other one
    const id = await create(writer, owner)
    if (!(await list(reader, owner)).includes(id)) missing++
    const ingestions = await reader.inject({ method: 'GET', url: `/documents/${id}`, headers: owner.headers })
    t.equal(ingestions.statusCode, 200)
  }
  t.equal(missing, 0, `all ${rounds} documents listed right after their creation`)
  const served = (a.reads.stats().replica - before.a.replica) + (b.reads.stats().replica - before.b.replica)
  t.ok(served >= rounds / 2, `the replica served most of the lists (${served} of ${rounds})`)
})

t.test('a replica lagging by seconds never serves a stale authorization', async (t) => {
  const owner = await createUser(a, 'editor')
  const grantee = await createUser(a, 'viewer')
  const admin = await createUser(a, 'admin')
  const demoted = await createUser(a, 'admin')
  const shared = await create(a, owner)
  const trashed = await create(a, owner)
  const put = await a.inject({ method: 'PUT', url: `/documents/${shared}/shares/${grantee.id}`, headers: owner.headers, payload: { access: 'read' } })
  t.equal(put.statusCode, 200)
  await rep.caughtUp()
  t.ok((await list(b, grantee)).includes(shared), 'the grantee lists the shared document')
  t.ok((await list(b, demoted)).includes(shared), 'an admin lists every document')
  t.ok((await list(b, owner)).includes(trashed))

  await rep.pause()
  t.teardown(async () => { await rep.resume().catch(() => undefined) })
  t.equal((await a.inject({ method: 'DELETE', url: `/documents/${shared}/shares/${grantee.id}`, headers: owner.headers })).statusCode, 204)
  t.equal((await a.inject({ method: 'DELETE', url: `/documents/${trashed}`, headers: owner.headers })).statusCode, 204)
  t.equal((await a.inject({ method: 'PATCH', url: `/users/${demoted.id}`, headers: admin.headers, payload: { role: 'editor' } })).statusCode, 200)
  await sleep(1500) // a replica seconds behind (the assertions below do not depend on it: they hold at once)
  const stale = await rep.replica.query(`SELECT COUNT(*) AS n FROM quire.document_shares WHERE document_id = '${shared}'`) as Array<{ n: number }>
  t.equal(Number(stale[0]?.n), 1, 'the replica still has the revoked share (it lags)')

  for (const app of [a, b]) {
    t.notOk((await list(app, grantee)).includes(shared), 'the revoked share is gone from the grantee\'s list')
    const mine = await list(app, owner)
    t.notOk(mine.includes(trashed), 'the trashed document is gone from the owner\'s list')
    t.ok(mine.includes(shared))
    t.ok((await list(app, owner, '/documents?trashed=true&limit=100')).includes(trashed), 'and is in the trash')
    t.notOk((await list(app, demoted)).includes(shared), 'the demoted admin no longer lists others\' documents')
    t.equal((await app.inject({ method: 'GET', url: '/users', headers: demoted.headers })).statusCode, 403, 'nor the users')
    const ing = await app.inject({ method: 'GET', url: `/ingestions?documentId=${shared}`, headers: grantee.headers })
    t.equal(ing.statusCode, 200)
  }
  const health = await ready(a)
  t.equal(health.status, 'ok', 'a lagging replica does not make the process unready')
  t.equal(health.checks.replica, 'lagging', '/health/ready: replica lagging')
  t.match(health.warnings, [/read replica lagging/])

  await rep.resume()
  await rep.caughtUp()
  await eventually('the replica serves lists again', async () => {
    const n = a.reads.stats().replica
    await list(a, owner)
    return a.reads.stats().replica > n
  })
  t.equal((await ready(a)).checks.replica, 'ok')
})

t.test('lists take the position to wait for from Redis (the writers publish it), not from the primary', async (t) => {
  const owner = await createUser(a, 'editor')
  const id = await create(a, owner) // published by a before its answer
  t.ok((await list(b, owner)).includes(id), 'the other process lists it at once')
  const before = b.reads.stats()
  for (let i = 0; i < 10; i++) t.ok((await list(b, owner)).includes(id))
  const after = b.reads.stats()
  t.equal(after.positions - before.positions, 0, 'no list asked the primary for its position')
  t.equal(after.published - before.published, 10, 'each took the published one')
  t.equal(after.replica - before.replica, 10, 'and read the replica')
})

t.test('a deployment whose replica readers are new: lists ask the primary until every process had time to learn it', async (t) => {
  // (every other test here runs in a deployment whose readers are a minute old: longStandingReplicaReaders)
  const prefix = testPrefix('replica-new')
  const c = await build(t, { ...overrides, REDIS_PREFIX: prefix })
  const owner = await createUser(c, 'editor')
  const id = await create(c, owner)
  const before = c.reads.stats()
  for (let i = 0; i < 3; i++) t.ok((await list(c, owner)).includes(id))
  const after = c.reads.stats()
  t.equal(after.published - before.published, 0, 'no list trusted the published position')
  t.ok(after.positions > before.positions, 'they asked the primary')
})

t.test('Redis loses the published position: lists ask the primary, stay fresh, and publish it again', async (t) => {
  const owner = await createUser(a, 'editor')
  const key = `${overrides.REDIS_PREFIX}:replica:position`
  await rep.pause()
  t.teardown(async () => { await rep.resume().catch(() => undefined) })
  const id = await create(a, owner)
  t.ok(await a.redis.get(key), 'the write published a position')
  await a.redis.del(key)
  const before = b.reads.stats()
  t.ok((await list(b, owner)).includes(id), 'the list has the document, though the replica lags and nothing is published')
  t.ok(b.reads.stats().positions > before.positions, 'the primary was asked')
  await eventually('the position is published again', async () => await a.redis.get(key) !== null)
  await rep.resume()
  await rep.caughtUp()
})

t.test('after a Redis reconnect, a published position older than the last write is not trusted', async (t) => {
  // As after a failover to a Redis that missed the last publish: the key goes back to an older position.
  const owner = await createUser(a, 'editor')
  const key = `${overrides.REDIS_PREFIX}:replica:position`
  await create(a, owner)
  const older = await a.redis.get(key)
  t.ok(older, 'a position is published')
  await rep.pause()
  t.teardown(async () => { await rep.resume().catch(() => undefined) })
  const id = await create(a, owner)
  await a.redis.set(key, older!)
  const ready = new Promise(resolve => b.redis.once('ready', resolve))
  b.redis.disconnect(true) // the connection drops and comes back: b distrusts what Redis holds
  await ready
  t.ok((await list(b, owner)).includes(id), 'the list has the document written before the regression')
  await eventually('a fresh position is published again', async () => await a.redis.get(key) !== older)
  await rep.resume()
  await rep.caughtUp()
  await sleep(300) // past DATABASE_REPLICA_RETRY_MS of the lag above
  const before = b.reads.stats()
  await eventually('b takes published positions again', async () => {
    await list(b, owner)
    return b.reads.stats().published > before.published
  })
})

t.test('a list run alongside the position query is thrown away when a write came in before it', async (t) => {
  // The router alone, on a table of its own: while no write comes in, a read runs its list on the
  // replica next to the position query; a write just before a read makes that list stale.
  const [pp, rp] = [createPool(rep.primaryUrl, 4), createPool(rep.replicaUrl, 4)]
  t.teardown(async () => { await Promise.all([pp.end(), rp.end()]) })
  await pp.query('CREATE TABLE replica_probe (n INT NOT NULL)')
  t.teardown(async () => { await pp.query('DROP TABLE IF EXISTS replica_probe') })
  const silent = { warn: () => {}, error: () => {} }
  const router = replicaRouter(createDb(pp), createDb(rp), { maxWaitMs: 300, retryMs: 100, log: silent })
  const count = async (db: Db): Promise<number> => {
    const [rows] = await db.$client.query('SELECT COUNT(*) AS n FROM replica_probe') as unknown as [Array<{ n: number }>]
    return Number(rows[0]!.n)
  }
  let written = 0
  let discarded = 0
  // Other processes on this primary may write between two reads (then a read takes the fence
  // first): a few attempts, each of which must be right.
  for (let attempt = 0; attempt < 5 && discarded === 0; attempt++) {
    await rep.caughtUp()
    await sleep(150) // past retryMs of the last attempt's lag
    for (let i = 0; i < 3; i++) t.equal(await router.read(count), written, 'a quiet read')
    await rep.pause()
    await pp.query('INSERT INTO replica_probe VALUES (1)')
    written++
    const before = router.stats().discarded
    t.equal(await router.read(count), written, 'the read right after a write counts it, though the replica lags')
    discarded += router.stats().discarded - before
    await rep.resume()
  }
  t.ok(discarded > 0, 'the list the replica answered before it applied the write was discarded')
  await rep.caughtUp()
  await sleep(150)
  for (let i = 0; i < 3; i++) t.equal(await router.read(count), written)
  t.ok(router.stats().replica > 0, 'the replica serves reads again')
})

t.test('a replica that dies: lists still answer (from the primary), readiness stays ok; back when it is', async (t) => {
  const owner = await createUser(a, 'editor')
  const admin = await createUser(a, 'admin')
  const id = await create(a, owner)
  await rep.replica.kill()
  t.teardown(async () => { await rep.replica.start().catch(() => undefined) })
  const started = Date.now()
  for (let i = 0; i < 20; i++) {
    t.ok((await list(b, owner)).includes(id))
  }
  for (const url of ['/users?limit=5', '/audit-events?limit=5', `/ingestions?documentId=${id}`]) {
    t.equal((await b.inject({ method: 'GET', url, headers: admin.headers })).statusCode, 200, `${url} answers`)
  }
  t.ok(Date.now() - started < 30_000, 'no long wait per list')
  const health = await ready(b)
  t.equal(health.status, 'ok', 'readiness does not depend on the replica')
  t.equal(health.checks.replica, 'down', '/health/ready: replica down')
  const metrics = await b.inject({ method: 'GET', url: '/metrics', headers: admin.headers })
  if (metrics.statusCode === 200) t.match(metrics.body, /quire_db_replica_state\{state="down"\} 1/)

  await rep.replica.start()
  await rep.caughtUp()
  await eventually('the replica is ok again', async () => (await ready(b)).checks.replica === 'ok')
  const id2 = await create(a, owner)
  await eventually('lists read the replica again', async () => {
    const n = b.reads.stats().replica
    const seen = (await list(b, owner)).includes(id2)
    if (!seen) throw new Error('a list missed a document created before it')
    return b.reads.stats().replica > n
  })
})
