import { Type, type Static } from '@sinclair/typebox'
import { Id, IsoDate, PageQuery } from './common.js'

/** One content version of a document (GET /documents/:id/versions). */
export const Version = Type.Object({
  number: Type.Integer({ minimum: 1, description: '1 for the first upload, one more for each new content' }),
  size: Type.Integer(),
  sha256: Type.String(),
  mimeType: Type.String({ description: 'sniffed from the bytes, not taken from the client' }),
  filename: Type.String(),
  createdAt: IsoDate,
  createdBy: Type.String({ description: 'the user who uploaded (or restored) this version' }),
  current: Type.Boolean({ description: 'true for the version the document shows (its size, sha256, mimeType, content)' }),
})
export type VersionDto = Static<typeof Version>

/** A version number in a path (int32, as the column). */
export const VersionParams = Type.Object({
  id: Id(),
  n: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'the version number' }),
}, { additionalProperties: false })

export const VersionListQuery = Type.Object({ ...PageQuery, limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }, { additionalProperties: false })
