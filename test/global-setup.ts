// Runs once before the tap suite (tap "before"): a fresh, migrated test database.
import mysql from 'mysql2/promise'
import { runMigrations } from '../drizzle/migrate.js'
import { TEST_DATABASE_URL } from './helper.js'

// package.json "engines": the LTS lines 22 (>= 22.13) and 24. Older Node still runs the suite today,
// but dependencies already want 22 (EBADENGINE warnings) and Node 20 is end-of-life: say so, once.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 13) || major === 23) {
  console.log(`# WARNING: Node ${process.version} is not supported; use Node 22 (>= 22.13) or 24 (.ci/run fetches 24 on its own)`)
}

const url = new URL(TEST_DATABASE_URL)
const name = url.pathname.slice(1)
const server = new URL(TEST_DATABASE_URL)
server.pathname = '/'
const conn = await mysql.createConnection({ uri: server.toString() })
await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
await conn.end()
await runMigrations(TEST_DATABASE_URL)
console.log(`test database ${name} migrated`)
