import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import mysql from 'mysql2/promise'
import { drizzle } from 'drizzle-orm/mysql2'
import { migrate } from 'drizzle-orm/mysql2/migrator'

// Works from source (drizzle/) and from the build (dist/drizzle/): the SQL lives next to the source.
const here = dirname(fileURLToPath(import.meta.url))
const candidates = [join(here, 'migrations'), join(here, '../../drizzle/migrations')]

/** Creates the database (utf8mb4) when missing, then applies pending migrations. Idempotent. */
export async function runMigrations (databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl)
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''))
  if (!/^[\w$-]+$/.test(database)) throw new Error(`DATABASE_URL: bad database name "${database}"`)
  const serverUrl = new URL(databaseUrl)
  serverUrl.pathname = '/'
  const admin = await mysql.createConnection({ uri: serverUrl.toString() })
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  } finally {
    await admin.end()
  }
  const conn = await mysql.createConnection({ uri: databaseUrl, multipleStatements: true })
  try {
    const { existsSync } = await import('node:fs')
    const migrationsFolder = candidates.find(p => existsSync(join(p, 'meta/_journal.json')))
    if (migrationsFolder === undefined) throw new Error('migrations folder not found')
    await migrate(drizzle(conn), { migrationsFolder })
  } finally {
    await conn.end()
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { loadDotEnv } = await import('../src/config.js')
  loadDotEnv()
  const url = process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire'
  try {
    await runMigrations(url)
    console.log('migrations applied')
  } catch (err) {
    console.error('migration failed:', (err as Error).message)
    process.exit(1)
  }
}
