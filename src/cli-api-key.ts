/**
 * `npm run cli -- create-api-key`: an API key made without the API, to bootstrap CI (issue 21).
 * The key alone goes to stdout (`KEY=$(npm run -s cli -- create-api-key ...)`), the rest to stderr.
 */
import { parseArgs } from 'node:util'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigSchema } from './config.js'
import { createDb, createPool } from './db.js'
import { AUDIT_INSERT_SQL, auditValues } from './domain/audit.js'
import { createKey } from './domain/api-keys/create.js'
import { keyPrefix } from './lib/api-key-format.js'
import { effectivePermissions, isPermission, PERMISSIONS } from './domain/permissions.js'
import { findUserByEmail, getUser } from './domain/users.js'

export const API_KEY_USAGE = `       npm run cli -- create-api-key (--email <email> | --user-id <id>) --name <name> --scopes <p1,p2,...> [--expires-in-days <n>]
  prints a new API key for that user (a service account: --user-id); scopes among the user's permissions:
  ${PERMISSIONS.join(', ')}; expiry: n days (default and bound: API_KEY_MAX_TTL_DAYS)`

const KeyConfig = Type.Pick(ConfigSchema, ['DATABASE_URL', 'API_KEY_MAX_TTL_DAYS'])

export async function createApiKeyCommand (args: string[], fail: (message: string) => never, actor: string): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { email: { type: 'string' }, 'user-id': { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' }, 'expires-in-days': { type: 'string' } },
    strict: true,
  })
  if ((values.email === undefined) === (values['user-id'] === undefined)) fail(`give one of --email and --user-id\n${API_KEY_USAGE}`)
  const name = values.name?.trim() ?? ''
  if (name === '' || name.length > 100) fail(`--name is required (1..100 characters)\n${API_KEY_USAGE}`)
  const scopes = (values.scopes ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  if (scopes.length === 0) fail(`--scopes is required\n${API_KEY_USAGE}`)
  const unknown = scopes.filter(s => !isPermission(s))
  if (unknown.length > 0) fail(`unknown scopes: ${unknown.join(', ')} (known: ${PERMISSIONS.join(', ')})`)
  let expiresAt: string | undefined
  if (values['expires-in-days'] !== undefined) {
    const days = Number(values['expires-in-days'])
    if (!Number.isInteger(days) || days < 1) fail(`--expires-in-days must be a whole number of days, at least 1\n${API_KEY_USAGE}`)
    expiresAt = new Date(Date.now() + days * 24 * 3600 * 1000).toISOString()
  }
  const raw: Record<string, unknown> = {}
  for (const k of Object.keys(KeyConfig.properties)) if (process.env[k] !== undefined && process.env[k] !== '') raw[k] = process.env[k]
  const config = Value.Default(KeyConfig, Value.Convert(KeyConfig, raw))
  if (!Value.Check(KeyConfig, config)) fail(`bad configuration: ${[...Value.Errors(KeyConfig, config)].map(e => `${e.path.slice(1)}: ${e.message}`).join('; ')}`)
  const pool = createPool(config.DATABASE_URL, 1)
  const db = createDb(pool)
  try {
    const user = values.email !== undefined ? await findUserByEmail(db, values.email) : await getUser(db, values['user-id']!.toLowerCase())
    if (user === undefined) fail(`no user ${values.email ?? values['user-id'] ?? ''}; nothing made`)
    if (user.disabled) fail(`user ${user.id} is disabled: a key of theirs would be refused; nothing made`)
    const held = effectivePermissions(user.role, user.grants, user.revokes)
    const now = new Date()
    const { row, key } = await createKey(db, { id: user.id, held }, { name, scopes, expiresAt }, { maxTtlDays: config.API_KEY_MAX_TTL_DAYS, createdBy: actor, now })
    await db.$client.execute(AUDIT_INSERT_SQL, auditValues(null, {
      actorId: actor,
      action: 'api_key.create',
      subject: `api_key:${row.id}`,
      payload: { name: row.name, userId: row.userId, scopes: row.scopes, expiresAt: row.expiresAt?.toISOString() ?? null, prefix: keyPrefix(row.publicId) },
    }))
    console.error(`API key ${row.id} (${keyPrefix(row.publicId)}...) for ${user.id} <${user.email}>: scopes ${row.scopes.join(',')}; expires ${row.expiresAt?.toISOString() ?? 'never'}. It is shown this once:`)
    console.log(key)
  } finally {
    await pool.end()
  }
}
