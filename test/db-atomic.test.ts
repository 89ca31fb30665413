import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { createDb, createPool, sqlAtomic, sqlAtomicGrouped, type Db } from '../src/db.js'
import { TEST_DATABASE_URL, countConnections } from './helper.js'

// sqlAtomic sends a whole transaction as one multi-statement query on its own pool. What matters:
// all or nothing, the connection is clean after a failure, and values are escaped, not spliced.
const TABLE = `atomic_probe_${randomBytes(4).toString('hex')}`

test('sqlAtomic: one round trip, all or nothing, with and without the batch pool', async (t) => {
  const pool = createPool(TEST_DATABASE_URL, 2)
  // One connection only: the statement after a failure must run on the connection that failed.
  const batch = createPool(TEST_DATABASE_URL, 1, { multipleStatements: true })
  t.teardown(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`)
    await Promise.all([pool.end(), batch.end()])
  })
  await pool.query(`CREATE TABLE ${TABLE} (id VARCHAR(36) PRIMARY KEY, v TEXT NOT NULL)`)
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
  const pool = createPool(TEST_DATABASE_URL, 2)
  const batch = createPool(TEST_DATABASE_URL, 4, { multipleStatements: true })
  t.teardown(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`)
    await Promise.all([pool.end(), batch.end()])
  })
  await pool.query(`CREATE TABLE ${table} (id VARCHAR(36) PRIMARY KEY, v TEXT NOT NULL)`)
  const db = createDb(pool, batch)
  const taken = randomBytes(8).toString('hex')
  await pool.query(`INSERT INTO ${table} (id, v) VALUES (?, 'before')`, [taken])
  const stored = async (): Promise<Map<string, string>> => {
    const [rows] = await pool.query(`SELECT id, v FROM ${table}`) as unknown as [Array<{ id: string, v: string }>]
    return new Map(rows.map(r => [r.id, r.v]))
  }

  // 40 callers at once: most of them wait while the first ones are at MySQL, then go together.
  // `dup`: the caller's last statement inserts an existing id; `bad`: MySQL refuses its statement.
  type Outcome = { ok: true, r: unknown[] } | { ok: false, code?: string }
  const callers = async (kinds: Map<number, 'dup' | 'bad'>): Promise<Array<{ id: string, out: Outcome }>> => {
    const ids = Array.from({ length: 40 }, () => randomBytes(8).toString('hex'))
    return await Promise.all(ids.map(async (id, i) => {
      const statements: Array<[string, string[]]> = [
        [`INSERT INTO ${table} (id, v) VALUES (?, ?)`, [id, `v${i}`]],
        ['SET @quire_changed = ROW_COUNT()', []],
        [`UPDATE ${table} SET v = CONCAT(v, '!') WHERE id = ? AND @quire_changed = 1`, [id]],
        ['SELECT ? AS echo', [id]],
      ]
      if (kinds.get(i) === 'dup') statements.push([`INSERT INTO ${table} (id, v) VALUES (?, 'dup')`, [taken]])
      if (kinds.get(i) === 'bad') statements.push(['SELECT no_such_column FROM DUAL', []])
      const out = await sqlAtomicGrouped(db, statements).then((r): Outcome => ({ ok: true, r }), (e: unknown): Outcome => ({ ok: false, code: (e as { code?: string }).code }))
      return { id, out }
    }))
  }

  await t.test('all callers succeed: fewer transactions than callers', async (t) => {
    const { result: results, taken: sent } = await countConnections(batch, async () => await callers(new Map()))
    const rows = await stored()
    for (const [i, { id, out }] of results.entries()) {
      if (!out.ok) { t.fail(`caller ${i} failed: ${out.code}`); continue }
      t.equal(out.r.length, 4, 'one result per own statement')
      t.equal((out.r[0] as { affectedRows: number }).affectedRows, 1)
      t.equal((out.r[2] as { affectedRows: number }).affectedRows, 1, 'the user variable this caller set guards its own statement')
      t.same(out.r[3], [{ echo: id }], 'its own SELECT\'s rows')
      t.equal(rows.get(id), `v${i}!`, 'its writes are committed')
    }
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
    const results = await callers(new Map([[7, 'dup'], [13, 'bad']]))
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
        t.equal(rows.get(id), `v${i}!`, 'its writes are committed')
      }
    }
    t.equal(rows.get(taken), 'before', 'the existing row is untouched')
  })
})
