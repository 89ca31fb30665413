import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import mysql, { type Pool } from 'mysql2/promise'
import type { Test } from 'tap'
import { loadConfig, type Config } from '../src/config.js'
import { buildApp } from '../src/build.js'
import { runMigrations } from '../drizzle/migrate.js'
import { users } from '../drizzle/schema/index.js'
import { newId } from '../src/lib/ids.js'
import { createSession } from '../src/domain/sessions.js'
import { hashPassword } from '../src/domain/passwords.js'
import type { Role } from '../src/domain/permissions.js'
import { createRedis } from '../src/redis.js'

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_test'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * This run of the suite: every test file, and tap's before/after scripts, are children of one tap
 * process. Redis prefixes and temp directories carry it, so test/global-teardown.ts removes exactly
 * what this run left (and nothing of a run beside it).
 */
export const TEST_RUN = process.env.QUIRE_TEST_RUN ?? String(process.ppid)
export const TEST_PREFIX_ROOT = `qt-${TEST_RUN}-`
export const TEST_TMP_ROOT = `quire-test-${TEST_RUN}-`

/** A Redis key prefix of this run's own. */
export const testPrefix = (tag = 'app'): string => `${TEST_PREFIX_ROOT}${tag}-${randomBytes(4).toString('hex')}`
/** A new temp directory of this run's own. */
export const testTempDir = (tag = 'tmp'): string => mkdtempSync(join(tmpdir(), `${TEST_TMP_ROOT}${tag}-`))

export interface Teardownable { teardown: (fn: () => unknown) => void }

/** A config for tests: the test database, a Redis key prefix of its own, fast bcrypt, a temp storage dir. */
export function testConfig (overrides: Partial<Config> = {}): Config {
  return loadConfig({}, {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: testPrefix(),
    JWT_SECRET: 'test-secret-test-secret-test-secret-0123',
    STORAGE_URL_SECRET: 'test-storage-url-secret-0123456789abcdef',
    INGESTION_SECRET: 'test-ingestion-secret-0123456789',
    LOG_LEVEL: (process.env.TEST_LOG_LEVEL ?? 'silent') as Config['LOG_LEVEL'],
    BCRYPT_COST: 4,
    STORAGE_DIR: testTempDir('storage'),
    RATE_LIMIT_MAX: 100000,
    // The suite's files share one database: a sweep in one file's worker would take other files' rows.
    INGESTION_RECOVERY_INTERVAL_MS: 0,
    THUMBNAIL_SWEEP_INTERVAL_MS: 0,
    ...overrides,
  })
}

/**
 * Fastify's default pluginTimeout (10 s) covers autoload importing every plugin and route file; from
 * source that is a cold tsx transpile, which a loaded machine (parallel tap jobs) can stretch past
 * 10 s: "Plugin did not start in time: 'autoload'". The server runs compiled JS and keeps the default.
 */
export const TEST_PLUGIN_TIMEOUT = 60_000

/**
 * A freshly migrated database of its own, `<test db>_r<run>_<tag>`: for tests whose subject is the
 * whole database (the last admin, a sweep over every row) or whose worker or relay would take other
 * files' rows in the shared one. Dropped when `t` ends if given, else by the global teardown.
 */
export async function privateDatabase (tag: string, t?: Teardownable): Promise<string> {
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `${url.pathname}_r${TEST_RUN}_${tag}`
  const name = url.pathname.slice(1)
  const server = new URL(url)
  server.pathname = '/'
  const drop = async (): Promise<void> => {
    const conn = await mysql.createConnection({ uri: server.toString() })
    try { await conn.query(`DROP DATABASE IF EXISTS \`${name}\``) } finally { await conn.end() }
  }
  await drop()
  t?.teardown(drop)
  await runMigrations(url.toString())
  return url.toString()
}

/** Builds the real app (real MySQL, Redis, storage) and closes it when the test ends. */
export async function build (t: Teardownable, overrides: Partial<Config> = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(overrides), { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await app.close())
  await app.ready()
  return app
}

export interface TestUser {
  id: string
  email: string
  password: string
  role: Role
  accessToken: string
  refreshToken: string
  sessionId: string
  headers: { authorization: string }
}

export const uniqueEmail = (tag = 'u'): string => `${tag}-${randomBytes(6).toString('hex')}@example.test`

/** Inserts a user straight into the database and opens a session for it. */
export async function createUser (app: FastifyInstance, role: Role = 'viewer', opts: { grants?: string[], revokes?: string[], password?: string, email?: string, name?: string } = {}): Promise<TestUser> {
  const password = opts.password ?? `pw-${randomBytes(8).toString('hex')}`
  const email = opts.email ?? uniqueEmail(role)
  const id = newId()
  const now = new Date()
  await app.db.insert(users).values({
    id,
    email,
    name: opts.name ?? `Test ${role}`,
    passwordHash: await hashPassword(password, app.config.BCRYPT_COST),
    role,
    grants: opts.grants ?? [],
    revokes: opts.revokes ?? [],
    createdAt: now,
    updatedAt: now,
  })
  const s = await createSession(app, id, { ip: '127.0.0.1', userAgent: 'tap' })
  return { id, email, password, role, accessToken: s.accessToken, refreshToken: s.refreshToken, sessionId: s.sessionId, headers: { authorization: `Bearer ${s.accessToken}` } }
}

/** Asserts the contract's error body. */
export function assertErrorShape (t: Test, res: { statusCode: number, body: string, headers: Record<string, unknown> }, status: number, code?: string): void {
  t.equal(res.statusCode, status, `status ${status}`)
  const body = JSON.parse(res.body) as Record<string, unknown>
  t.equal(body.statusCode, status)
  t.ok(typeof body.error === 'string' && body.error.length > 0, 'error text')
  t.ok(typeof body.message === 'string', 'message')
  t.match(body.code, /^[a-z][a-z0-9_]*$/, 'snake_case code')
  if (code !== undefined) t.equal(body.code, code, `code ${code}`)
  t.equal(body.requestId, res.headers['x-request-id'], 'requestId echoes x-request-id')
  if (status >= 500) t.ok(!/at .+\.(ts|js):\d+|SELECT|INSERT|stack/i.test(String(body.message)), 'no leak in 5xx')
}

/** Runs `fn` and counts the connections it took from `pool`: one per transaction sent on the batch pool (sqlAtomic, a group). */
export async function countConnections<T> (pool: Pool, fn: () => Promise<T>): Promise<{ result: T, taken: number }> {
  const getConnection = pool.getConnection.bind(pool)
  let taken = 0
  pool.getConnection = async () => { taken++; return await getConnection() }
  try {
    const result = await fn()
    return { result, taken }
  } finally {
    pool.getConnection = getConnection
  }
}

/**
 * For the read replica's tests: the deployment under `prefix` has had replica readers for a
 * minute, so its lists trust published positions at once (a new deployment waits
 * READERS_TRUST_AFTER_MS for every process to learn it; src/db/replica-fence.ts). Call it before
 * building the apps.
 */
export async function longStandingReplicaReaders (prefix: string): Promise<void> {
  const redis = createRedis(TEST_REDIS_URL, { enableOfflineQueue: true })
  try {
    await redis.set(`${prefix}:replica:readers`, String(Date.now() - 60_000), 'EX', 120)
  } finally {
    redis.disconnect()
  }
}
