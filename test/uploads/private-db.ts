import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { runMigrations } from '../../drizzle/migrate.js'
import { TEST_DATABASE_URL, TEST_RUN } from '../helper.js'

/**
 * A freshly migrated database of this test's own: the uploads sweep works on every expired row of
 * the table, so sweeps run by other test files must not meet this file's rows (and the reverse).
 */
export async function privateDatabase (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const url = new URL(TEST_DATABASE_URL)
  const name = `${url.pathname.slice(1)}_r${TEST_RUN}_tus${randomBytes(4).toString('hex')}`
  const server = new URL(TEST_DATABASE_URL)
  server.pathname = '/'
  const conn = await mysql.createConnection({ uri: server.toString() })
  await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`)
  t.teardown(async () => {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await conn.end()
  })
  url.pathname = `/${name}`
  await runMigrations(url.toString())
  return url.toString()
}
