import { test, type Test } from 'tap'
import type { Pool } from 'mysql2/promise'
import { randomBytes } from 'node:crypto'
import { createDb, createPool, sqlAtomic, sqlAtomicGrouped, type Db } from '../src/db.js'
import { TEST_DATABASE_URL, countConnections } from './helper.js'
import { proxyFor } from './tcp-proxy.js'

// sqlAtomic sends a whole transaction as one multi-statement query on its own pool. What matters:
// all or nothing, the connection is clean after a failure, and values are escaped, not spliced.
const TABLE = `atomic_probe_${randomBytes(4).toString('hex')}`

/** A probe table `name` (id, v), a plain pool and a batch pool of `batchSize` connections (at `batchUrl`), all removed at teardown. */
async function probe (t: Test, name: string, batchSize: number, batchUrl = TEST_DATABASE_URL): Promise<{ pool: Pool, batch: Pool }> {
  const pool = createPool(TEST_DATABASE_URL, 2)
  const batch = createPool(batchUrl, batchSize, { multipleStatements: true })
  t.teardown(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${name}`)
    await Promise.all([pool.end(), batch.end()])
  })
  await pool.query(`CREATE TABLE ${name} (id VARCHAR(36) PRIMARY KEY, v TEXT NOT NULL)`)
  return { pool, batch }
}

test('sqlAtomic: one round trip, all or nothing, with and without the batch pool', async (t) => {
  // One batch connection only: the statement after a failure must run on the connection that failed.
  const { pool, batch } = await probe(t, TABLE, 1)
  const count = async (id: string): Promise<number> => {
    const [rows] = await pool.query(`SELECT COUNT(*) AS n FROM ${TABLE} WHERE id = ?`, [id]) as unknown as [Array<{ n: number }>]
    return Number(rows[0]!.n)
  }

  for (const [label, db] of [['batch pool', createDb(pool, batch)], ['statement by statement', createDb(pool)]] as Array<[string, Db]>) {
    await t.test(label, async (t) => {
      const a = randomBytes(8).toString('hex')
      const b = randomBytes(8).toString('hex')
      const tricky = "it's; DROP TABLE x; -- \\ \"q\""
      const out = await sqlAtomic(db, [
        [`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [a, tricky]],
        [`UPDATE ${TABLE} SET v = CONCAT(v, ?) WHERE id = ?`, ['!', a]],
        [`UPDATE ${TABLE} SET v = 'never' WHERE id = ?`, ['no-such-row']],
      ]) as Array<{ affectedRows: number }>
      t.equal(out.length, 3, 'one result per statement')
      t.same(out.map(r => r.affectedRows), [1, 1, 0], 'each statement reports its own row count')
      const [rows] = await pool.query(`SELECT v FROM ${TABLE} WHERE id = ?`, [a]) as unknown as [Array<{ v: string }>]
      t.equal(rows[0]?.v, `${tricky}!`, 'quotes, semicolons and backslashes are stored verbatim')

      // The second INSERT hits the primary key: the first one must not be committed either.
      const err = await sqlAtomic(db, [
        [`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [b, 'first']],
        [`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [a, 'duplicate']],
      ]).then(() => null, (e: unknown) => e as { code?: string })
      t.equal(err?.code, 'ER_DUP_ENTRY', 'the failing statement\'s error is thrown')
      t.equal(await count(b), 0, 'nothing of the failed transaction is committed')

      // The same (only) connection is clean: a new transaction commits normally.
      await sqlAtomic(db, [[`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [b, 'second']]])
      t.equal(await count(b), 1, 'the next transaction on the connection commits')
      const [again] = await pool.query(`SELECT v FROM ${TABLE} WHERE id = ?`, [b]) as unknown as [Array<{ v: string }>]
      t.equal(again[0]?.v, 'second')
    })
  }
})

test('sqlAtomicGrouped: concurrent callers share a transaction, each gets its own results and errors', async (t) => {
  const table = `${TABLE}_g`
  const { pool, batch } = await probe(t, table, 4)
  const db = createDb(pool, batch)
  const taken = randomBytes(8).toString('hex')
  await pool.query(`INSERT INTO ${table} (id, v) VALUES (?, 'before')`, [taken])
  const stored = async (): Promise<Map<string, string>> => {
    const [rows] = await pool.query(`SELECT id, v FROM ${table}`) as unknown as [Array<{ id: string, v: string }>]
    return new Map(rows.map(r => [r.id, r.v]))
  }

  // 40 callers at once: most of them wait while the first ones are at MySQL, then go together.
  // `dup`: the caller's last statement inserts an existing id; `bad`: MySQL refuses its statement;
  // `noop`: its first statement changes nothing, so the statement it guards must not run, whatever
  // the callers before it in the same transaction set.
  type Outcome = { ok: true, r: unknown[] } | { ok: false, code?: string }
  const callers = async (kinds: Map<number, 'dup' | 'bad' | 'noop'>): Promise<Array<{ id: string, out: Outcome }>> => {
    const ids = Array.from({ length: 40 }, () => randomBytes(8).toString('hex'))
    return await Promise.all(ids.map(async (id, i) => {
      const target = kinds.get(i) === 'noop' ? taken : id
      const statements: Array<[string, string[]]> = [
        [`INSERT ${kinds.get(i) === 'noop' ? 'IGNORE ' : ''}INTO ${table} (id, v) VALUES (?, ?)`, [target, `v${i}`]],
        ['SET @quire_changed = ROW_COUNT()', []],
        [`UPDATE ${table} SET v = CONCAT(v, '!') WHERE id = ? AND @quire_changed = 1`, [target]],
        ['SELECT ? AS echo', [id]],
      ]
      if (kinds.get(i) === 'dup') statements.push([`INSERT INTO ${table} (id, v) VALUES (?, 'dup')`, [taken]])
      if (kinds.get(i) === 'bad') statements.push(['SELECT no_such_column FROM DUAL', []])
      const out = await sqlAtomicGrouped(db, statements).then((r): Outcome => ({ ok: true, r }), (e: unknown): Outcome => ({ ok: false, code: (e as { code?: string }).code }))
      return { id, out }
    }))
  }

  await t.test('all callers succeed: fewer transactions than callers', async (t) => {
    const { result: results, taken: sent } = await countConnections(batch, async () => await callers(new Map([[9, 'noop'], [30, 'noop']])))
    const rows = await stored()
    for (const [i, { id, out }] of results.entries()) {
      if (!out.ok) { t.fail(`caller ${i} failed: ${out.code}`); continue }
      if (i === 9 || i === 30) {
        t.same((out.r as Array<{ affectedRows?: number }>).map(r => r.affectedRows), [0, 0, 0, undefined], 'a caller whose insert changed nothing: its guarded update does not run')
        t.notOk(rows.has(id))
        continue
      }
      t.equal(out.r.length, 4, 'one result per own statement')
      t.equal((out.r[0] as { affectedRows: number }).affectedRows, 1)
      t.equal((out.r[2] as { affectedRows: number }).affectedRows, 1, 'the user variable this caller set guards its own statement')
      t.same(out.r[3], [{ echo: id }], 'its own SELECT\'s rows')
      t.equal(rows.get(id), `v${i}!`, 'its writes are committed')
    }
    t.equal(rows.get(taken), 'before', 'the existing row is untouched')
    t.ok(sent > 0 && sent <= results.length / 4, `callers shared transactions (${sent} round trips for ${results.length})`)
  })

  await t.test('large statements go in several groups, none over about 1 MiB', async (t) => {
    const big = 'x'.repeat(60 * 1024) // TEXT holds 64 KiB
    const ids = Array.from({ length: 40 }, () => randomBytes(8).toString('hex'))
    const { result: results, taken: sent } = await countConnections(batch, async () =>
      await Promise.all(ids.map(async id => await sqlAtomicGrouped(db, [[`INSERT INTO ${table} (id, v) VALUES (?, ?)`, [id, big]]]))))
    t.equal(results.length, ids.length)
    // 2 go alone, the other 38 wait: at most 17 of 60 KiB fit in a group, so at least 3 more trips
    t.ok(sent >= 5 && sent < ids.length, `split into groups (${sent} round trips for ${ids.length})`)
    const rows = await stored()
    for (const id of ids) t.equal(rows.get(id)?.length, big.length, 'stored whole')
  })

  await t.test('a failing caller fails alone', async (t) => {
    const { result: results, taken: sent } = await countConnections(batch, async () => await callers(new Map([[7, 'dup'], [13, 'bad']])))
    // the failed group's callers ran again, one transaction each
    t.ok(sent > results.length / 2, `the refused group was rerun caller by caller (${sent} round trips)`)
    const rows = await stored()
    for (const [i, { id, out }] of results.entries()) {
      if (i === 7) {
        t.same(out, { ok: false, code: 'ER_DUP_ENTRY' }, 'the caller whose statement failed gets its error')
        t.notOk(rows.has(id), 'and nothing of its transaction is kept')
      } else if (i === 13) {
        t.same(out, { ok: false, code: 'ER_BAD_FIELD_ERROR' })
        t.notOk(rows.has(id), 'nothing of its transaction is kept')
      } else {
        t.ok(out.ok, `caller ${i} succeeds`)
        if (out.ok) t.same(out.r[3], [{ echo: id }], 'with its own results')
        t.equal(rows.get(id), `v${i}!`, 'its writes are committed')
      }
    }
    t.equal(rows.get(taken), 'before', 'the existing row is untouched')
  })
})

test('sqlAtomicGrouped: a connection lost under a group fails its callers and runs none again', async (t) => {
  const { proxy, url } = await proxyFor(t, TEST_DATABASE_URL, 3306)
  const table = `${TABLE}_lost`
  const { pool, batch } = await probe(t, table, 4, url)
  const db = createDb(pool, batch)
  await sqlAtomicGrouped(db, [['SELECT 1', []]]) // a connection through the proxy
  const ids = Array.from({ length: 10 }, () => randomBytes(8).toString('hex'))
  const { result: outcomes, taken } = await countConnections(batch, async () => {
    // The first two go alone and return at once; the other eight wait, then go as one group that
    // sleeps at MySQL until the connection under it is cut.
    const pending = ids.map(async (id, i) => await sqlAtomicGrouped(db, [[`INSERT INTO ${table} (id, v) VALUES (?, '')`, [id]], ...(i < 2 ? [] : [['SELECT SLEEP(0.5)', []] as const])])
      .then(() => 'ok', (e: unknown) => (e as { fatal?: boolean }).fatal === true ? 'fatal' : String(e)))
    await new Promise(resolve => setTimeout(resolve, 200))
    await proxy.cut()
    return await Promise.all(pending)
  })
  t.same(outcomes, ids.map((_id, i) => i < 2 ? 'ok' : 'fatal'), 'every caller of the group gets the connection\'s error')
  t.equal(taken, 3, 'two callers alone, one group of eight, and no rerun')
  const [rows] = await pool.query(`SELECT id FROM ${table}`) as unknown as [Array<{ id: string }>]
  t.same(rows.map(r => r.id).sort(), ids.slice(0, 2).sort(), 'only the two that went alone were committed')
})
