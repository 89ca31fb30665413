import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2'
import mysql from 'mysql2/promise'
import * as schema from '../drizzle/schema/index.js'

/** The drizzle database; `$client` is its mysql2 pool, for the few hot queries written in SQL. */
export type Db = MySql2Database<typeof schema> & { $client: mysql.Pool }
/** A transaction or the db itself: repository functions take either. */
export type DbOrTx = Db | Parameters<Parameters<Db['transaction']>[0]>[0]

export function createPool (url: string, connectionLimit: number): mysql.Pool {
  return mysql.createPool({
    uri: url,
    connectionLimit,
    maxIdle: connectionLimit,
    enableKeepAlive: true,
    timezone: 'Z',
    dateStrings: false,
    charset: 'utf8mb4',
    connectTimeout: 5000,
    // The pool queues requests when all connections are busy; bound it so a dead DB fails fast.
    queueLimit: 1000,
    // No Error.captureStackTrace per query (mysql2's default): a measurable share of every
    // statement's CPU. A failing query's error still carries its code, message and SQL state.
    trace: false,
  })
}

export function createDb (pool: mysql.Pool): Db {
  return drizzle(pool, { schema, mode: 'default' })
}

export { schema }

/**
 * Runs `fn` in a transaction on one pooled connection, for the hot writes written in SQL
 * (drizzle's own `db.transaction` for everything else).
 */
export async function sqlTransaction<T> (db: Db, fn: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
  const conn = await db.$client.getConnection()
  try {
    await conn.beginTransaction()
    const out = await fn(conn)
    await conn.commit()
    return out
  } catch (err) {
    await conn.rollback().catch(() => undefined)
    throw err
  } finally {
    conn.release()
  }
}
