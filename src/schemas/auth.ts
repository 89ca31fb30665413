import { Type, type Static } from '@sinclair/typebox'
import { PASSWORD_MAX, PASSWORD_MIN, PERMISSIONS, ROLES } from '../constants.js'
import { IsoDate } from './common.js'

/** Schemas of the auth, users and audit resources. Response schemas list only public fields. */

export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254, description: 'trimmed and lowercased before use' })
export const NewPassword = Type.String({ minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX, description: `${PASSWORD_MIN}..${PASSWORD_MAX} characters, any characters` })
export const Name = Type.String({ minLength: 1, maxLength: 200 })
export const RoleName = Type.Union(ROLES.map(r => Type.Literal(r)))
export const PermissionName = Type.Union(PERMISSIONS.map(p => Type.Literal(p)))
export const PermissionList = Type.Array(PermissionName, { maxItems: PERMISSIONS.length * 2 })

export const Me = Type.Object({
  id: Type.String(),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  role: Type.String(),
  permissions: Type.Array(Type.String()),
  createdAt: IsoDate,
}, { additionalProperties: false })
export type MeDto = Static<typeof Me>

export const UserKind = Type.Union([Type.Literal('human'), Type.Literal('service')])

export const User = Type.Object({
  id: Type.String(),
  email: Type.String({ description: 'for a service account a generated placeholder (…@service.invalid): it cannot log in' }),
  name: Type.Union([Type.String(), Type.Null()]),
  role: Type.String(),
  kind: Type.Union([Type.Literal('human'), Type.Literal('service')], { description: '`service`: a machine account (no password, API keys only)' }),
  permissions: Type.Array(Type.String(), { description: 'effective: role defaults + grants - revokes' }),
  grants: Type.Array(Type.String()),
  revokes: Type.Array(Type.String()),
  disabled: Type.Boolean(),
  quotaBytes: Type.Union([Type.Integer(), Type.Null()], { description: 'the user\'s own storage quota in bytes (0 = unlimited); null = QUOTA_DEFAULT_BYTES applies' }),
  usedBytes: Type.Integer({ description: 'bytes of every stored version of the documents the user owns, trashed ones included until purged' }),
  createdAt: IsoDate,
  updatedAt: IsoDate,
}, { additionalProperties: false })
export type UserDto = Static<typeof User>

/** PATCH /users/:id: a whole number of bytes (0 = unlimited), or null for QUOTA_DEFAULT_BYTES. */
export const QuotaBytes = Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.Null()], {
  description: 'storage quota in bytes (0 = unlimited); null = back to QUOTA_DEFAULT_BYTES',
})

/** GET /auth/me: the caller plus their storage usage against their quota. */
export const MeWithUsage = Type.Object({
  ...Me.properties,
  usedBytes: Type.Integer({ description: 'bytes of every stored version of the documents you own, trashed ones included until purged' }),
  reservedBytes: Type.Integer({ description: 'bytes held by your uploads in progress (settled to their real size when they complete)' }),
  quotaBytes: Type.Integer({ description: 'the storage quota that applies to you, bytes; 0 = unlimited' }),
}, { additionalProperties: false })

/** What any sharer may learn about another user: enough to share with them, nothing more. */
export const UserRef = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  email: Type.String(),
}, { additionalProperties: false })

export const TokenPairResponse = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String({ description: 'opaque; shown once, stored only as a hash' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'access token lifetime, seconds' }),
})

export const LoginResponse = Type.Object({ ...TokenPairResponse.properties, user: Me })

export const Session = Type.Object({
  id: Type.String(),
  createdAt: IsoDate,
  lastUsedAt: IsoDate,
  expiresAt: IsoDate,
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean({ description: 'the session of the token making this request' }),
})
export type SessionDto = Static<typeof Session>

export const AuditEvent = Type.Object({
  id: Type.String(),
  at: IsoDate,
  actorId: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  subject: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
  apiKeyId: Type.Union([Type.String(), Type.Null()], { description: 'the API key the action was made with, if any' }),
  payload: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
})
export type AuditEventDto = Static<typeof AuditEvent>

/** preValidation hook: trims `body.email` so " A@B.C " validates (and is then lowercased by the domain). */
export async function trimEmail (request: { body: unknown }): Promise<void> {
  const body = request.body as { email?: unknown } | null
  if (body !== null && typeof body === 'object' && typeof body.email === 'string') body.email = body.email.trim()
}
