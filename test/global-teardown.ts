// Runs once after the tap suite (tap "after"): removes what this run left on the machine, so a
// run leaves it as it found it: its Redis keys, its temp directories and its databases.
import { readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { Redis } from 'ioredis'
import { TEST_DATABASE_URL, TEST_PREFIX_ROOT, TEST_REDIS_URL, TEST_RUN, TEST_TMP_ROOT } from './helper.js'

const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
let keys = 0
try {
  await redis.connect()
  let cursor = '0'
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${TEST_PREFIX_ROOT}*`, 'COUNT', 1000)
    cursor = next
    if (found.length > 0) keys += await redis.unlink(...found)
  } while (cursor !== '0')
} catch (err) {
  console.error(`teardown: could not clean Redis: ${(err as Error).message}`)
} finally {
  redis.disconnect()
}

let dirs = 0
for (const name of readdirSync(tmpdir())) {
  if (!name.startsWith(TEST_TMP_ROOT)) continue
  rmSync(join(tmpdir(), name), { recursive: true, force: true })
  dirs++
}

const url = new URL(TEST_DATABASE_URL)
const name = url.pathname.slice(1)
url.pathname = '/'
const dropped: string[] = []
try {
  const conn = await mysql.createConnection({ uri: url.toString() })
  const [rows] = await conn.query('SHOW DATABASES')
  for (const row of rows as Array<{ Database: string }>) {
    // the suite's database, and the private ones some files make beside it (`<name>_r<run>_<suffix>`)
    if (row.Database !== name && !row.Database.startsWith(`${name}_r${TEST_RUN}_`)) continue
    await conn.query(`DROP DATABASE IF EXISTS \`${row.Database}\``)
    dropped.push(row.Database)
  }
  await conn.end()
} catch (err) {
  console.error(`teardown: could not drop the test databases: ${(err as Error).message}`)
}
console.log(`# teardown: removed ${keys} Redis keys, ${dirs} temp directories, databases ${dropped.join(', ') || '(none)'}`)
