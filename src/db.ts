import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2'
import mysql from 'mysql2/promise'
import * as schema from '../drizzle/schema/index.js'

/**
 * The drizzle database; `$client` is its mysql2 pool, for the few hot queries written in SQL
 * (their texts live in src/db/hot-paths.ts); `$batch`, when set, a second pool that accepts
 * several statements per round trip, used only by sqlAtomic/sqlAtomicGrouped/sqlBatch below.
 * Their statements are fixed texts with `?` placeholders: no value is ever part of a statement's
 * text (test/db/hostile-values.test.ts, test/db-atomic.test.ts).
 */
export type Db = MySql2Database<typeof schema> & { $client: mysql.Pool, $batch?: mysql.Pool }
/** A transaction or the db itself: repository functions take either. */
export type DbOrTx = Db | Parameters<Parameters<Db['transaction']>[0]>[0]

export function createPool (url: string, connectionLimit: number, opts: { multipleStatements?: boolean, maxIdle?: number, connectTimeout?: number } = {}): mysql.Pool {
  const pool = mysql.createPool({
    uri: url,
    connectionLimit,
    maxIdle: opts.maxIdle ?? connectionLimit,
    multipleStatements: opts.multipleStatements === true,
    enableKeepAlive: true,
    timezone: 'Z',
    dateStrings: false,
    charset: 'utf8mb4',
    connectTimeout: opts.connectTimeout ?? 5000,
    // The pool queues requests when all connections are busy; bound it so a dead DB fails fast.
    queueLimit: 1000,
    // No Error.captureStackTrace per query (mysql2's default): a measurable share of every
    // statement's CPU. A failing query's error still carries its code, message and SQL state.
    trace: false,
    // Server-side prepared statements (`execute`) are cached per connection: a few dozen fixed
    // texts are used; the bound keeps processes x connections x cache well under the server's
    // max_prepared_stmt_count (16382 by default).
    maxPreparedStatements: 64,
  })
  // mysql2 formats client-side values (drizzle's queries, the batches) with backslash escapes,
  // which are only escapes while NO_BACKSLASH_ESCAPES is off: make sure of it on every new
  // connection (queued before any other command on it), whatever the server's default sql_mode.
  pool.pool.on('connection', (conn) => {
    // Best effort: a server that refuses SET sql_mode is not one that turned the mode on.
    conn.query("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')", () => undefined)
  })
  return pool
}

/** `batch`: a pool created with `multipleStatements` for `sqlAtomic`; without it, `sqlAtomic` sends one statement at a time. */
export function createDb (pool: mysql.Pool, batch?: mysql.Pool): Db {
  const db: Db = drizzle(pool, { schema, mode: 'default' })
  if (batch !== undefined) db.$batch = batch
  return db
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

/**
 * One statement with its `?` parameters (formatted client-side, escaped by mysql2). Scalars only:
 * mysql2 would format an object as `key = value` pairs, so JSON goes in already stringified.
 */
export type SqlValue = string | number | boolean | Date | null
export type Statement = readonly [sql: string, params: readonly SqlValue[]]

/**
 * Runs `statements` in one transaction and returns each one's result. With a batch pool it is
 * one round trip (`START TRANSACTION; ...; COMMIT` as one multi-statement query), which is what
 * the hot writes (a transition, a trigger) want: a transaction of four statements was four round
 * trips and four socket writes on both sides. MySQL stops a multi-statement query at the first
 * failing statement, so the error is rethrown after a ROLLBACK on the same connection (destroyed
 * rather than reused if even that fails). Values always go through mysql2's escaping.
 */
export async function sqlAtomic (db: Db, statements: readonly Statement[]): Promise<unknown[]> {
  // A deadlock (ER_LOCK_DEADLOCK) rolled the whole transaction back: running it again is safe, and
  // is what MySQL asks for (two triggers of one document each hold the row's shared lock from
  // their INSERT ... SELECT and want its exclusive lock for the index state).
  for (let attempt = 1; ; attempt++) {
    try {
      return await runBatch(db, statements, true)
    } catch (err) {
      if ((err as { errno?: number }).errno !== ER_LOCK_DEADLOCK || attempt >= DEADLOCK_ATTEMPTS) throw err
      await new Promise(resolve => setTimeout(resolve, Math.random() * 10 * attempt))
    }
  }
}
const ER_LOCK_DEADLOCK = 1213

/**
 * A transaction that decides on what it read, in two round trips with a batch pool: `first`
 * (after START TRANSACTION, e.g. a locking read), then the statements `decide` picks from their
 * results, with the COMMIT. Without a batch pool, one statement at a time. An error (or a throw
 * from `decide`) rolls it back.
 */
export async function sqlDecide<T> (db: Db, first: readonly Statement[], decide: (results: unknown[]) => { then: readonly Statement[], value: T }): Promise<T> {
  const batch = db.$batch
  if (batch === undefined) {
    return await sqlTransaction(db, async (conn) => {
      const results: unknown[] = []
      for (const [sql, params] of first) results.push((await conn.query(sql, [...params]))[0])
      const d = decide(results)
      for (const [sql, params] of d.then) await conn.query(sql, [...params])
      return d.value
    })
  }
  const conn = await batch.getConnection()
  let healthy = true
  try {
    const [read] = await conn.query(['START TRANSACTION', ...first.map(([sql, params]) => conn.format(sql, [...params]))].join(';\n')) as unknown as [unknown[]]
    const d = decide(read.slice(1))
    await conn.query([...d.then.map(([sql, params]) => conn.format(sql, [...params])), 'COMMIT'].join(';\n'))
    return d.value
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => { healthy = false })
    throw err
  } finally {
    if (healthy) conn.release()
    else conn.destroy()
  }
}
const DEADLOCK_ATTEMPTS = 5

/**
 * How many grouped transactions one pool runs at once, and how much one group holds at most: a
 * number of statements, and about 1 MiB of SQL (well under max_allowed_packet: MariaDB's default
 * is 16 MiB, MySQL 8's 64; a trigger's options alone may be 64 KiB).
 */
const GROUP_IN_FLIGHT = 2
const GROUP_MAX_STATEMENTS = 256
const GROUP_MAX_BYTES = 1024 * 1024
/** Past this many waiting callers, a caller goes alone (and meets the pool's own queue limit). */
const GROUP_MAX_WAITING = 1000

/** Roughly how long the statements are once formatted (escaping may add a little). */
const sizeOf = (statements: readonly Statement[]): number =>
  statements.reduce((n, [sql, params]) => n + sql.length + params.reduce<number>((m, v) => m + (typeof v === 'string' ? v.length + 2 : 24), 0), 0)

interface Waiter { statements: readonly Statement[], bytes: number, resolve: (results: unknown[]) => void, reject: (err: unknown) => void }
interface Group { waiting: Waiter[], inFlight: number }
const groups = new WeakMap<mysql.Pool, Group>()

/**
 * `sqlAtomic` with group commit, for hot transactions that many requests run at once (the
 * ingestion trigger): callers that arrive while GROUP_IN_FLIGHT groups are already at MySQL wait,
 * and are then sent together as one transaction in one round trip, each caller's statements in
 * its order, so MySQL parses one query and commits (flushes its redo log) once for all of them.
 * Nobody waits for a timer: an idle pool sends a lone caller at once. Each caller still gets only
 * its own statements' results and is all or nothing; when MySQL refuses a group (one caller's
 * statement failed, a deadlock), nothing of it was committed and every caller runs again alone, so
 * an error reaches only the caller whose statement caused it. A lost connection leaves the outcome
 * unknown (the COMMIT may have landed): every caller gets that error, as from `sqlAtomic`, and
 * none is run again. Statements must not depend on the session state another caller's
 * statements leave behind (each sets the user variables it reads, as the trigger's batch does).
 * Used for the trigger only, not for the worker's transitions: bench/ANALYSIS.md ("Group commit
 * for the trigger") has the measurements both ways.
 */
export async function sqlAtomicGrouped (db: Db, statements: readonly Statement[]): Promise<unknown[]> {
  const batch = db.$batch
  if (batch === undefined || statements.length === 0) return await sqlAtomic(db, statements)
  let group = groups.get(batch)
  if (group === undefined) {
    group = { waiting: [], inFlight: 0 }
    groups.set(batch, group)
  }
  const g = group
  if (g.waiting.length >= GROUP_MAX_WAITING) return await sqlAtomic(db, statements)
  return await new Promise<unknown[]>((resolve, reject) => {
    g.waiting.push({ statements, bytes: sizeOf(statements), resolve, reject })
    if (g.inFlight < GROUP_IN_FLIGHT) startGroup(db, g)
  })
}

function startGroup (db: Db, g: Group): void {
  sendGroup(db, g).catch(() => { /* cannot reject: every caller's outcome is settled inside */ })
}

async function sendGroup (db: Db, g: Group): Promise<void> {
  const take: Waiter[] = []
  let count = 0
  let bytes = 0
  while (g.waiting.length > 0) {
    const next = g.waiting[0]!
    if (take.length > 0 && (count + next.statements.length > GROUP_MAX_STATEMENTS || bytes + next.bytes > GROUP_MAX_BYTES)) break
    take.push(g.waiting.shift()!)
    count += next.statements.length
    bytes += next.bytes
  }
  g.inFlight++
  try {
    if (take.length === 1) {
      await sqlAtomic(db, take[0]!.statements).then(take[0]!.resolve, take[0]!.reject)
      return
    }
    let results: unknown[]
    try {
      results = await runBatch(db, take.flatMap(w => w.statements), true)
    } catch (err) {
      // mysql2 marks a lost connection `fatal`; anything else is MySQL's refusal of a statement,
      // which stopped the query before its COMMIT.
      if ((err as { fatal?: boolean }).fatal === true) {
        for (const w of take) w.reject(err)
        return
      }
      await Promise.all(take.map(async w => { await sqlAtomic(db, w.statements).then(w.resolve, w.reject) }))
      return
    }
    // One result per statement, or the callers' slices would not be their own (committed all the same).
    if (results.length !== count) {
      const err = new Error(`a grouped transaction of ${count} statements answered ${results.length} results`)
      for (const w of take) w.reject(err)
      return
    }
    let at = 0
    for (const w of take) {
      w.resolve(results.slice(at, at + w.statements.length))
      at += w.statements.length
    }
  } finally {
    g.inFlight--
    if (g.waiting.length > 0 && g.inFlight < GROUP_IN_FLIGHT) startGroup(db, g)
  }
}

/**
 * Runs `statements` in order in one round trip, each in its own autocommit transaction (the
 * batch stops at the first failing one); without a batch pool, one at a time. `nestTables` as
 * in mysql2, for every SELECT of the batch.
 */
export async function sqlBatch (db: Db, statements: readonly Statement[], opts: { nestTables?: boolean } = {}): Promise<unknown[]> {
  return await runBatch(db, statements, false, opts.nestTables === true)
}

async function runBatch (db: Db, statements: readonly Statement[], atomic: boolean, nestTables = false): Promise<unknown[]> {
  if (statements.length === 0) return []
  const batch = db.$batch
  if (batch === undefined) {
    const each = async (conn: mysql.Pool | mysql.PoolConnection): Promise<unknown[]> => {
      const out: unknown[] = []
      for (const [sql, params] of statements) out.push((await conn.query({ sql, nestTables }, [...params]))[0])
      return out
    }
    return atomic ? await sqlTransaction(db, each) : await each(db.$client)
  }
  const conn = await batch.getConnection()
  let healthy = true
  try {
    const body = statements.map(([sql, params]) => conn.format(sql, [...params]))
    const text = (atomic ? ['START TRANSACTION', ...body, 'COMMIT'] : body).join(';\n')
    const [results] = await conn.query({ sql: text, nestTables }) as unknown as [unknown[]]
    // A batch of one statement answers that statement's result, not a list of one.
    if (!atomic && statements.length === 1) return [results]
    return atomic ? results.slice(1, -1) : results
  } catch (err) {
    if (atomic) await conn.query('ROLLBACK').catch(() => { healthy = false })
    throw err
  } finally {
    if (healthy) conn.release()
    else conn.destroy()
  }
}
