import { Type, type Static } from '@sinclair/typebox'
import { DOCUMENT_STATUSES, INDEX_STATES, MAX_TAG_LENGTH, MAX_TAGS, SHARE_ACCESS, VISIBILITIES } from '../constants.js'
import { Id, IsoDate, NullableDate } from './common.js'

export { MAX_TAG_LENGTH, MAX_TAGS }

export const Visibility = Type.Union(VISIBILITIES.map(v => Type.Literal(v)))
// Static type `string` while the domain's rows carry `status: string` (see IngestionStatus).
export const DocumentStatus = Type.Union(DOCUMENT_STATUSES.map(s => Type.Literal<string>(s)))
export const ShareAccess = Type.Union(SHARE_ACCESS.map(a => Type.Literal(a)))

/** No control characters (NUL, escape sequences) in one-line text. */
export const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]*$'
/** Multi-line text: tabs and line breaks, no other control characters. */
const NO_CONTROL_BUT_LINES = '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$'

export const Title = Type.String({ minLength: 1, maxLength: 500, pattern: NO_CONTROL })
export const Description = Type.String({ maxLength: 10000, pattern: NO_CONTROL_BUT_LINES })
const Tag = Type.String({ maxLength: 200, pattern: NO_CONTROL, description: `trimmed and lower-cased; at most ${MAX_TAGS} tags of ${MAX_TAG_LENGTH} characters` })
export const Tags = Type.Array(Tag, { maxItems: 100 })

// Static type `string` while the rows carry `indexState: string` (see IngestionStatus).
export const IndexState = Type.Union(INDEX_STATES.map(s => Type.Literal<string>(s)), { description: 'none | pending | indexed | stale | failed | removing (docs/ingestion.md)' })

/** Where the ingestion backend's index stands for the document. */
export const DocumentIndex = Type.Object({
  state: IndexState,
  version: Type.Union([Type.Integer(), Type.Null()], { description: 'the content version the backend holds (null: none)' }),
  chunks: Type.Union([Type.Integer(), Type.Null()], { description: 'as the backend reported it' }),
  pipeline: Type.Union([Type.String(), Type.Null()]),
  pipelineVersion: Type.Union([Type.String(), Type.Null()], { description: 'as the backend reported it' }),
  indexedAt: NullableDate,
  lastError: Type.Union([Type.String(), Type.Null()], { description: 'why the last ingestion failed (state failed)' }),
})

export const Document = Type.Object({
  id: Type.String(),
  title: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  filename: Type.String(),
  mimeType: Type.String({ description: 'sniffed from the bytes, not taken from the client' }),
  size: Type.Integer(),
  sha256: Type.String(),
  status: DocumentStatus,
  visibility: Visibility,
  tags: Type.Array(Type.String()),
  ownerId: Type.String(),
  version: Type.Integer(),
  thumbnail: Type.Union([Type.Object({ width: Type.Integer(), height: Type.Integer() }), Type.Null()]),
  metadata: Type.Object({}, { additionalProperties: true }),
  error: Type.Optional(Type.String({ description: 'why processing failed (status failed)' })),
  createdAt: IsoDate,
  updatedAt: IsoDate,
  deletedAt: NullableDate,
  index: DocumentIndex,
})
export type DocumentDto = Static<typeof Document>

export const DocumentPatch = Type.Object({
  title: Type.Optional(Title),
  description: Type.Optional(Type.Union([Description, Type.Null()])),
  tags: Type.Optional(Tags),
  visibility: Type.Optional(Visibility),
}, { additionalProperties: false, minProperties: 1 })

export const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'searches title, description and filename' })),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  mimeType: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'exact type, or a wildcard like image/*' })),
  ownerId: Type.Optional(Id()),
  status: Type.Optional(DocumentStatus),
  indexState: Type.Optional(IndexState),
  trashed: Type.Boolean({ default: false, description: 'true: only documents in the trash (those you may restore)' }),
}, { additionalProperties: false })

export const Share = Type.Object({
  userId: Type.String(),
  access: ShareAccess,
  createdAt: IsoDate,
})
export type ShareDto = Static<typeof Share>

export const CreateUpload = Type.Object({
  filename: Type.String({ minLength: 1, maxLength: 255 }),
  mimeType: Type.String({ minLength: 3, maxLength: 255, pattern: '^[\\w.+-]+/[\\w.+-]+$' }),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
}, { additionalProperties: false })

export const UploadTicket = Type.Object({
  uploadId: Type.String(),
  method: Type.Literal('PUT'),
  url: Type.String(),
  headers: Type.Record(Type.String(), Type.String()),
  expiresAt: IsoDate,
})

export const DocumentFields = Type.Object({
  title: Type.Optional(Title),
  description: Type.Optional(Description),
  tags: Type.Optional(Tags),
  visibility: Type.Optional(Visibility),
}, { additionalProperties: false })
export type DocumentFieldsInput = Static<typeof DocumentFields>
