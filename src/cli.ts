/**
 * Operator commands that work without the HTTP API (a plain MySQL connection; Redis only to make a
 * promotion visible to running API processes at once):
 *   npm run cli -- create-admin --email a@b.c [--name 'Ada'] [--promote] [--password-stdin]
 *   npm run cli -- ensure-bucket [--wait <seconds>]   (S3: creates S3_BUCKET if it does not exist)
 *   npm run cli -- create-api-key --email a@b.c --name ci --scopes documents:read   (prints the key)
 * The password never goes on the command line (npm echoes it): it comes from stdin
 * (--password-stdin), from $ADMIN_PASSWORD, or from a prompt that does not echo.
 * Every change is audited with the actor `cli`.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigSchema, loadDotEnv } from './config.js'
import { createDb, createPool, type Db } from './db.js'
import { createAdmin, findUserByEmail, normalizeEmail, updateUser } from './domain/users.js'
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from './domain/passwords.js'
import { AUDIT_INSERT_SQL, auditValues } from './domain/audit.js'
import { publishUserState } from './domain/auth-state.js'
import { createRedis, waitReady, type RedisTarget } from './redis.js'
import { API_KEY_USAGE, createApiKeyCommand } from './cli-api-key.js'

const USAGE = `usage: npm run cli -- create-admin --email <email> [--name <name>] [--promote] [--password-stdin]
  password: read from stdin with --password-stdin, else $ADMIN_PASSWORD, else asked at a prompt
            (${PASSWORD_MIN}..${PASSWORD_MAX} characters; never pass it as an argument: npm prints the command line)
  --promote: when a user with this email exists, make it an admin (its password is left as it is)
       npm run cli -- ensure-bucket [--wait <seconds>]
  creates S3_BUCKET at S3_ENDPOINT unless it exists; retries while the server is not up yet (default 60 s)
${API_KEY_USAGE}`

/** The actor recorded in audit rows for operator commands. */
const CLI_ACTOR = 'cli'

// Only what the CLI needs: it must not require the API's secrets.
const CliConfig = Type.Pick(ConfigSchema, ['DATABASE_URL', 'BCRYPT_COST', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_PREFIX'])

class CliError extends Error {}
function fail (message: string): never { throw new CliError(message) }

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''
}

/** Asks without echoing what is typed. */
async function prompt (question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
  const write = rl as unknown as { _writeToOutput: (s: string) => void }
  let asked = false
  write._writeToOutput = (s: string) => { if (!asked) { process.stderr.write(s); asked = true } }
  try {
    return await new Promise<string>(resolve => rl.question(question, resolve))
  } finally {
    rl.close()
    process.stderr.write('\n')
  }
}

async function readPassword (fromStdin: boolean): Promise<string> {
  if (fromStdin) return await readStdin()
  const env = process.env.ADMIN_PASSWORD
  if (env !== undefined && env !== '') return env
  if (process.stdin.isTTY !== true) fail(`no password: pipe it with --password-stdin or set ADMIN_PASSWORD\n${USAGE}`)
  const first = await prompt('Password: ')
  if (first !== await prompt('Repeat the password: ')) fail('the two passwords differ; nothing changed')
  return first
}

async function audit (db: Db, action: string, subject: string, payload: Record<string, unknown>): Promise<void> {
  await db.$client.execute(AUDIT_INSERT_SQL, auditValues(null, { actorId: CLI_ACTOR, action, subject, payload }))
}

/** Writes the user's new role through to Redis so running API processes see it on their next request. */
async function publish (config: RedisTarget & { REDIS_PREFIX: string }, db: Db, uid: string): Promise<void> {
  const redis = createRedis(config, { lazyConnect: false })
  try {
    if (!await waitReady(redis, 2000)) throw new Error('Redis is not reachable')
    await publishUserState({ db, redis, key: (...parts) => `${config.REDIS_PREFIX}:${parts.join(':')}` }, uid)
  } catch (err) {
    console.error(`warning: the role changed in MySQL, but Redis (${config.REDIS_URL}) could not be told: ${(err as Error).message}. ` +
      'Running API processes see the change within an hour, or at once after a restart of Redis.')
  } finally {
    redis.disconnect()
  }
}

async function createAdminCommand (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      promote: { type: 'boolean', default: false },
      'password-stdin': { type: 'boolean', default: false },
      password: { type: 'string' },
    },
    strict: true,
  })
  if (values.password !== undefined) fail(`--password is not accepted: npm prints the command line, password included\n${USAGE}`)
  const email = values.email
  if (email === undefined || email.trim() === '') fail(`--email is required\n${USAGE}`)
  const raw: Record<string, unknown> = {}
  for (const k of ['DATABASE_URL', 'BCRYPT_COST', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_PREFIX']) if (process.env[k] !== undefined && process.env[k] !== '') raw[k] = process.env[k]
  const config = Value.Default(CliConfig, Value.Convert(CliConfig, raw))
  if (!Value.Check(CliConfig, config)) fail(`bad configuration: ${[...Value.Errors(CliConfig, config)].map(e => `${e.path.slice(1)}: ${e.message}`).join('; ')}`)
  const address = normalizeEmail(email)
  const pool = createPool(config.DATABASE_URL, 1)
  const db = createDb(pool)
  try {
    const existing = await findUserByEmail(db, address)
    if (existing !== undefined) {
      if (!values.promote) fail(`a user with email ${address} already exists; nothing changed (pass --promote to make it an admin)`)
      if (existing.role === 'admin') { console.log(`already an admin: ${existing.id} <${address}>`); return }
      await updateUser(db, existing.id, { role: 'admin' })
      await audit(db, 'user.update', `user:${existing.id}`, { changed: ['role'], role: 'admin', from: existing.role })
      await publish(config, db, existing.id)
      console.log(`promoted to admin: ${existing.id} <${address}>`)
      return
    }
    const password = await readPassword(values['password-stdin'])
    if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) fail(`password must be ${PASSWORD_MIN}..${PASSWORD_MAX} characters\n${USAGE}`)
    const res = await createAdmin(db, address, await hashPassword(password, config.BCRYPT_COST), values.name)
    if (!res.created) fail(`a user with email ${address} already exists; nothing changed`)
    else {
      await audit(db, 'user.create', `user:${res.id}`, { email: address, role: 'admin' })
      console.log(`admin created: ${res.id} <${address}>`)
    }
  } finally {
    await pool.end()
  }
}

const S3Settings = Type.Pick(ConfigSchema, ['S3_BUCKET', 'S3_REGION', 'S3_ENDPOINT', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_FORCE_PATH_STYLE'])

/** For docker compose and fresh S3-compatible servers: the bucket, made once, idempotently. */
async function ensureBucketCommand (args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { wait: { type: 'string', default: '60' } }, strict: true })
  const waitSeconds = Number(values.wait)
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0) fail(`--wait must be a whole number of seconds\n${USAGE}`)
  const raw: Record<string, unknown> = {}
  for (const k of Object.keys(S3Settings.properties)) if (process.env[k] !== undefined && process.env[k] !== '') raw[k] = process.env[k]
  const config = Value.Default(S3Settings, Value.Convert(S3Settings, raw))
  if (!Value.Check(S3Settings, config)) fail(`bad configuration: ${[...Value.Errors(S3Settings, config)].map(e => `${e.path.slice(1)}: ${e.message}`).join('; ')}`)
  const { S3Client, HeadBucketCommand, CreateBucketCommand } = await import('@aws-sdk/client-s3')
  const client = new S3Client({
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    ...(config.S3_ENDPOINT !== '' ? { endpoint: config.S3_ENDPOINT } : {}),
    ...(config.S3_ACCESS_KEY_ID !== '' ? { credentials: { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY } } : {}),
  })
  const deadline = Date.now() + waitSeconds * 1000
  try {
    for (;;) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: config.S3_BUCKET }))
        console.log(`bucket ${config.S3_BUCKET} exists`)
        return
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
        if (status === 404) {
          await client.send(new CreateBucketCommand({ Bucket: config.S3_BUCKET }))
          console.log(`bucket ${config.S3_BUCKET} created`)
          return
        }
        if (status === 403) fail(`S3 refused the credentials for bucket ${config.S3_BUCKET} (403): check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY`)
        if (Date.now() >= deadline) fail(`S3 at ${config.S3_ENDPOINT || 'AWS'} did not answer in ${waitSeconds} s: ${(err as Error).message}`)
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
  } finally {
    client.destroy()
  }
}

loadDotEnv()
const [command, ...rest] = process.argv.slice(2)
try {
  if (command === 'create-admin') await createAdminCommand(rest)
  else if (command === 'ensure-bucket') await ensureBucketCommand(rest)
  else if (command === 'create-api-key') await createApiKeyCommand(rest, fail, CLI_ACTOR)
  else fail(command === undefined ? USAGE : `unknown command "${command}"\n${USAGE}`)
} catch (err) {
  console.error(err instanceof CliError ? err.message : `error: ${(err as Error).message}`)
  process.exitCode = 1
}
