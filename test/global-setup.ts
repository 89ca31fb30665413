// Runs once before the tap suite (tap "before"): a fresh, migrated test database.
import mysql from 'mysql2/promise'
import { runMigrations } from '../drizzle/migrate.js'
import { TEST_DATABASE_URL } from './helper.js'

const url = new URL(TEST_DATABASE_URL)
const name = url.pathname.slice(1)
const server = new URL(TEST_DATABASE_URL)
server.pathname = '/'
const conn = await mysql.createConnection({ uri: server.toString() })
await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
await conn.end()
await runMigrations(TEST_DATABASE_URL)
console.log(`test database ${name} migrated`)
