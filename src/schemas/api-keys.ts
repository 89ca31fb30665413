import { Type, type Static } from '@sinclair/typebox'
import { PERMISSIONS } from '../constants.js'
import { Id, IsoDate, NullableDate } from './common.js'
import { PermissionName } from './auth.js'

/** Schemas of the API key resource (issue 21). The key itself appears only in the creation answer. */

export const ApiKeyName = Type.String({ minLength: 1, maxLength: 100 })
export const Scopes = Type.Array(PermissionName, { minItems: 1, maxItems: PERMISSIONS.length * 2, description: 'permissions the key may use; each must be one the owner has' })

export const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: '`qk_<public id>`: the key\'s visible start, to recognise it' }),
  userId: Type.String({ description: 'the owner: requests made with the key act as this user' }),
  scopes: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]),
  createdAt: IsoDate,
  createdBy: Type.Union([Type.String(), Type.Null()], { description: 'who made it: the owner, or the admin who made it for a service account' }),
  expiresAt: NullableDate,
  revokedAt: NullableDate,
  lastUsedAt: Type.Union([IsoDate, Type.Null()], { description: 'updated at most once a minute' }),
  lastUsedIp: Type.Union([Type.String(), Type.Null()]),
}, { additionalProperties: false })
export type ApiKeyDto = Static<typeof ApiKey>

export const CreatedApiKey = Type.Object({
  ...ApiKey.properties,
  key: Type.String({ description: '`qk_<public id>_<secret>`: shown this once, stored only as a hash. Send it as `Authorization: Bearer <key>`.' }),
}, { additionalProperties: false })

export const CreateApiKeyBody = Type.Object({
  name: ApiKeyName,
  scopes: Scopes,
  expiresAt: Type.Optional(Type.Union([IsoDate, Type.Null()], { description: 'default: API_KEY_MAX_TTL_DAYS from now; null = never (only when API_KEY_MAX_TTL_DAYS is 0)' })),
  userId: Type.Optional(Id({ description: 'users:manage: make the key for this service account' })),
}, { additionalProperties: false })
