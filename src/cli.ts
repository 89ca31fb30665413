/**
 * Operator commands that work without the HTTP API (plain MySQL connection):
 *   npm run cli -- create-admin --email a@b.c --password '...' [--name 'Ada']
 * The password may come from ADMIN_PASSWORD instead of the command line (keeps it out of shell history).
 */
import { parseArgs } from 'node:util'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigSchema, loadDotEnv } from './config.js'
import { createDb, createPool } from './db.js'
import { createAdmin } from './domain/users.js'
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from './domain/passwords.js'

const USAGE = `usage: npm run cli -- create-admin --email <email> [--password <password>] [--name <name>]
  --password defaults to $ADMIN_PASSWORD; ${PASSWORD_MIN}..${PASSWORD_MAX} characters`

// Only what the CLI needs: it must not require the API's secrets.
const CliConfig = Type.Pick(ConfigSchema, ['DATABASE_URL', 'BCRYPT_COST'])

function fail (message: string): never {
  console.error(message)
  process.exit(1)
}

async function createAdminCommand (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } },
    strict: true,
  })
  const email = values.email
  const password = values.password ?? process.env.ADMIN_PASSWORD
  if (email === undefined || email === '') fail(`--email is required\n${USAGE}`)
  if (password === undefined || password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    fail(`password must be ${PASSWORD_MIN}..${PASSWORD_MAX} characters\n${USAGE}`)
  }
  const raw: Record<string, unknown> = {}
  for (const k of ['DATABASE_URL', 'BCRYPT_COST']) if (process.env[k] !== undefined && process.env[k] !== '') raw[k] = process.env[k]
  const config = Value.Default(CliConfig, Value.Convert(CliConfig, raw))
  if (!Value.Check(CliConfig, config)) fail(`bad configuration: ${[...Value.Errors(CliConfig, config)].map(e => `${e.path.slice(1)}: ${e.message}`).join('; ')}`)
  const pool = createPool(config.DATABASE_URL, 1)
  try {
    const res = await createAdmin(createDb(pool), email, await hashPassword(password, config.BCRYPT_COST), values.name)
    if (!res.created) fail(`a user with email ${email.trim().toLowerCase()} already exists; nothing changed`)
    console.log(`admin created: ${res.id} <${email.trim().toLowerCase()}>`)
  } finally {
    await pool.end()
  }
}

loadDotEnv()
const [command, ...rest] = process.argv.slice(2)
try {
  if (command === 'create-admin') await createAdminCommand(rest)
  else fail(command === undefined ? USAGE : `unknown command "${command}"\n${USAGE}`)
} catch (err) {
  fail(`error: ${(err as Error).message}`)
}
