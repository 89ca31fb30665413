import type { Db } from '../../db.js'
import type { RedisClient as Redis } from '../../redis.js'
import { badRequest, forbidden, missingPermission, notFound } from '../../lib/errors.js'
import type { AuditContext, RecordAudit } from '../audit.js'
import { effectivePermissions, type Permission } from '../permissions.js'
import { getUser } from '../users.js'
import { publishKeyActive, publishKeysRevoked } from './auth.js'
import { createKey, type NewKeyInput } from './create.js'
import { findKey, listKeys, revokeKey, toApiKeyView, type ApiKeyView } from './store.js'

export interface ApiKeyServiceDeps {
  db: Db
  redis: Redis
  key: (...parts: string[]) => string
  maxTtlDays: number
  clock: () => Date
  audit: RecordAudit
}

/** Who asks: the authenticated principal (src/domain/auth-state.ts has this shape). */
export interface KeyActor {
  id: string
  permissions: readonly Permission[]
  can: (p: Permission) => boolean
  /** set when the request itself was made with an API key */
  keyId?: string
}

export const sessionRequired = (what: string) =>
  forbidden(`${what} needs a user session: log in (POST /auth/login) and use the access token, not an API key`, 'session_required')

/**
 * API keys (issue 21): made, listed and revoked here, each action committed, published (a
 * revocation reaches every API process at once) and audited. Users manage their own keys;
 * `users:manage` also those of others, and makes the keys of service accounts.
 */
export function apiKeyService (deps: ApiKeyServiceDeps) {
  const { db, audit } = deps

  /** Someone else's keys need users:manage; an unknown or invisible key is a 404. */
  const visible = (actor: KeyActor, ownerId: string): boolean => ownerId === actor.id || actor.can('users:manage')

  async function create (actor: KeyActor, input: NewKeyInput & { userId?: string }, ctx: AuditContext): Promise<ApiKeyView & { key: string }> {
    if (actor.keyId !== undefined) throw sessionRequired('Creating an API key')
    let owner = { id: actor.id, held: actor.permissions }
    if (input.userId !== undefined && input.userId !== actor.id) {
      if (!actor.can('users:manage')) throw missingPermission('users:manage')
      const user = await getUser(db, input.userId)
      if (user === undefined) throw notFound('User')
      if (user.kind !== 'service') throw badRequest('userId must be a service account: a person makes their own keys, signed in', 'not_a_service_account')
      // Within both: the account's permissions and the admin's own.
      const held = effectivePermissions(user.role, user.grants, user.revokes).filter(p => actor.can(p))
      owner = { id: user.id, held }
    }
    const now = deps.clock()
    const { row, key } = await createKey(db, owner, input, { maxTtlDays: deps.maxTtlDays, createdBy: actor.id, now })
    await publishKeyActive(deps, row.id, row.userId)
    const view = toApiKeyView(row, now)
    await audit(ctx, { action: 'api_key.create', subject: `api_key:${row.id}`, payload: { name: row.name, userId: row.userId, scopes: row.scopes, expiresAt: view.expiresAt, prefix: view.prefix } })
    return { ...view, key }
  }

  async function list (actor: KeyActor, q: { userId?: string, limit: number, cursor?: string }): Promise<{ items: ApiKeyView[], nextCursor: string | null }> {
    const userId = q.userId ?? actor.id
    if (!visible(actor, userId)) throw missingPermission('users:manage')
    return await listKeys(db, { userId, limit: q.limit, cursor: q.cursor })
  }

  async function get (actor: KeyActor, id: string): Promise<ApiKeyView> {
    const k = await findKey(db, id)
    if (k === undefined || !visible(actor, k.userId)) throw notFound('API key')
    return toApiKeyView(k, deps.clock())
  }

  /** Revokes a key (idempotent). A key-authenticated request may revoke only the key it is made with. */
  async function revoke (actor: KeyActor, id: string, ctx: AuditContext): Promise<void> {
    const k = await findKey(db, id)
    if (k === undefined || !visible(actor, k.userId)) throw notFound('API key')
    if (actor.keyId !== undefined && actor.keyId !== k.id) throw sessionRequired('Revoking another API key')
    if (!await revokeKey(db, k.id, k.userId === actor.id ? 'revoked_by_owner' : 'revoked_by_admin', deps.clock())) return
    await publishKeysRevoked(deps, [k.id])
    await audit(ctx, { action: 'api_key.revoke', subject: `api_key:${k.id}`, payload: { name: k.name, userId: k.userId, prefix: toApiKeyView(k).prefix } })
  }

  return { create, list, get, revoke }
}

export type ApiKeyService = ReturnType<typeof apiKeyService>
