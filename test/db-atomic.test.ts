import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { createDb, createPool, sqlAtomic, type Db } from '../src/db.js'
import { TEST_DATABASE_URL } from './helper.js'

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
