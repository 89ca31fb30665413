// issue 23: the API and the worker log one line at start-up saying where everything is (public URL,
// storage, database, Redis, ingestion backend), with no password or secret in it. The real entry
// points are spawned, with a MySQL user and a Redis AUTH that carry real passwords.
import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { TEST_DATABASE_URL, TEST_REDIS_URL, testPrefix, testTempDir } from './helper.js'
import { spawnEntry, waitForOutput } from './helpers/processes.js'
import { freePort } from './ingestion/helpers.js'

/** Runs an entry point until a log line with `msg` starting with `prefix` appears; returns every line printed. */
async function runUntil (entry: string, env: Record<string, string>, prefix: string): Promise<{ line: Record<string, unknown>, output: string }> {
  const proc = spawnEntry(entry, { PATH: process.env.PATH ?? '', ...env })
  try {
    // complete lines only: the last one may still be arriving
    const logged = (out: string) => out.split('\n').slice(0, -1).filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
    const line = await waitForOutput(proc, out => logged(out).find(rec => typeof rec.msg === 'string' && rec.msg.startsWith(prefix)), { what: `${entry} (a "${prefix}" line)` })
    return { line, output: proc.output() }
  } finally {
    await proc.stop('SIGTERM')
  }
}

test('the API and the worker log one start-up line without secrets', async (t) => {
  const db = new URL(TEST_DATABASE_URL)
  const user = `qt_${randomBytes(4).toString('hex')}`
  const dbPassword = `dbpw${randomBytes(8).toString('hex')}`
  const redisPassword = `redispw${randomBytes(8).toString('hex')}`
  const admin = await mysql.createConnection({ uri: TEST_DATABASE_URL })
  await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${dbPassword}'`)
  await admin.query(`GRANT ALL ON \`${db.pathname.slice(1)}\`.* TO '${user}'@'%'`)
  t.teardown(async () => { await admin.query(`DROP USER IF EXISTS '${user}'@'%'`); await admin.end() })
  db.username = user
  db.password = dbPassword
  const redis = new URL(TEST_REDIS_URL)
  redis.username = 'default' // the default user has no password: Redis accepts any, so the URL can carry one
  redis.password = redisPassword
  const secrets = { JWT_SECRET: `jwt${randomBytes(16).toString('hex')}`, STORAGE_URL_SECRET: `sus${randomBytes(16).toString('hex')}`, INGESTION_SECRET: `ing${randomBytes(16).toString('hex')}` }
  const port = await freePort()
  const storageDir = testTempDir('startup')
  const env = {
    ...secrets,
    DATABASE_URL: db.toString(),
    REDIS_URL: redis.toString(),
    REDIS_PREFIX: testPrefix('startup'),
    STORAGE_DIR: storageDir,
    HOST: '0.0.0.0',
    PORT: String(port),
    INGESTION_URL: 'http://127.0.0.1:9/ingest?token=s3cr3t-query',
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_MS: '2000',
    THUMBNAIL_SWEEP_INTERVAL_MS: '0', // the test database is shared with other files
  }
  const expected = {
    publicUrl: `http://127.0.0.1:${port}`, // PUBLIC_URL unset: the listening address, 0.0.0.0 as 127.0.0.1
    storage: `local ${storageDir}`,
    database: `mysql://${user}@${db.host}${db.pathname}`,
    redis: `redis://default@${redis.host}`,
    ingestionUrl: 'http://127.0.0.1:9/ingest?…',
  }
  const forbidden = [dbPassword, redisPassword, 's3cr3t-query', ...Object.values(secrets)]
  for (const [entry, prefix] of [['src/server.ts', 'api ready: '], ['src/worker.ts', 'worker started: ']] as const) {
    const { line, output } = await runUntil(entry, env, prefix)
    t.match(line, { level: 30, ...expected }, `${entry}: the fields`)
    t.equal(line.msg, `${prefix}public URL ${expected.publicUrl}, storage ${expected.storage}, database ${expected.database}, redis ${expected.redis}, ingestion ${expected.ingestionUrl}`, `${entry}: the sentence`)
    t.equal(output.split('\n').filter(l => l.includes(prefix)).length, 1, `${entry}: one line`)
    for (const s of forbidden) t.notOk(output.includes(s), `${entry}: no secret in the output (${s.slice(0, 5)}…)`)
  }
  // An explicit PUBLIC_URL is kept as it is.
  const { line } = await runUntil('src/worker.ts', { ...env, PUBLIC_URL: 'https://quire.example.test/base' }, 'worker started: ')
  t.equal(line.publicUrl, 'https://quire.example.test/base')
})
