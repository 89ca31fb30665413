import mysql from 'mysql2/promise'
import { runMigrations } from '../../drizzle/migrate.js'
import { TEST_DATABASE_URL, TEST_RUN } from '../helper.js'

/**
 * A migrated database of this file's own (`<test db>_r<run>_<tag>`, dropped by the global
 * teardown): these files run a recovery sweep, which would take other files' rows in the shared one.
 */
export async function privateDatabase (tag: string): Promise<string> {
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `${url.pathname}_r${TEST_RUN}_${tag}`
  const server = new URL(url)
  server.pathname = '/'
  const conn = await mysql.createConnection({ uri: server.toString() })
  await conn.query(`DROP DATABASE IF EXISTS \`${url.pathname.slice(1)}\``)
  await conn.end()
  await runMigrations(url.toString())
  return url.toString()
}
