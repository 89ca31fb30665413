import { Type, type Static } from '@sinclair/typebox'
import { INDEX_STATES, INGESTION_STATUSES } from '../constants.js'
import { Id, IsoDate, NullableDate } from './common.js'

// Static type `string` (not the literals) while the domain's rows carry `status: string`; narrow it
// (drop `<string>`) once they carry IngestionStatus from src/constants.ts.
export const IngestionStatus = Type.Union(INGESTION_STATUSES.map(s => Type.Literal<string>(s)))

export const IngestionEvent = Type.Object({
  at: IsoDate,
  type: Type.String({ description: 'queued | running | attempt | retry_scheduled | succeeded | failed | cancelled | superseded | retried | recovered | ...' }),
  message: Type.String(),
})
export type IngestionEventDto = Static<typeof IngestionEvent>

export const Ingestion = Type.Object({
  id: Type.String(),
  documentId: Type.String(),
  status: IngestionStatus,
  operation: Type.Union([Type.Literal<string>('upsert'), Type.Literal<string>('delete')], { description: 'upsert: index this version of the document; delete: remove it from the index' }),
  documentVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'the content version sent' }),
  batchId: Type.Union([Type.String(), Type.Null()], { description: 'the bulk re-run that created it (GET /ingestion-batches/:id)' }),
  pipeline: Type.String(),
  options: Type.Record(Type.String(), Type.Unknown()),
  attempts: Type.Integer({ description: 'requests sent to the backend so far (all retry cycles)' }),
  lastError: Type.Union([Type.String(), Type.Null()]),
  result: Type.Unknown({ description: 'what the backend returned on success (null until then)' }),
  requestedBy: Type.String(),
  createdAt: IsoDate,
  startedAt: NullableDate,
  finishedAt: NullableDate,
  events: Type.Array(IngestionEvent),
})
export type IngestionDto = Static<typeof Ingestion>

const Pipeline = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]*$', default: 'default' })
const Options = Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'passed through to the backend as is; at most 16 levels deep and 64 KiB of JSON' })

export const TriggerBody = Type.Object({
  pipeline: Type.Optional(Pipeline),
  options: Type.Optional(Options),
}, { additionalProperties: false })

// No defaults in the bodies of POST /ingestions: they are branches of a union (ajv applies no
// defaults there); the route fills them in.
const { default: _p, ...pipelineNoDefault } = Pipeline
const { default: _o, ...optionsNoDefault } = Options
const BulkPipeline = Type.Unsafe<string>({ ...pipelineNoDefault, description: 'default: "default"' })
const BulkOptions = Type.Unsafe<Record<string, unknown>>({ ...optionsNoDefault })

export const BulkTriggerBody = Type.Object({
  documentIds: Type.Array(Id(), { minItems: 1, maxItems: 100, uniqueItems: true }),
  pipeline: Type.Optional(BulkPipeline),
  options: Type.Optional(BulkOptions),
}, { additionalProperties: false })

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$', description: 'same key + same user = same ingestion(s)' })),
})

export const CallbackBody = Type.Object({
  ingestionId: Type.Optional(Type.String({ description: 'when given, must name the ingestion of the URL (else 400 ingestion_mismatch)' })),
  status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.String({ maxLength: 10000 })),
}, { additionalProperties: false })

export const CallbackReply = Type.Object({
  id: Type.String(),
  status: IngestionStatus,
  changed: Type.Boolean({ description: 'false when the callback repeated the current final status or the ingestion was cancelled' }),
})

export const BatchFilter = Type.Object({
  indexState: Type.Optional(Type.Union(INDEX_STATES.map(s => Type.Literal<string>(s)))),
  pipeline: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'documents last indexed with this pipeline' })),
  pipelineVersionNot: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'documents whose index was not built by this pipeline version (or not at all)' })),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  ownerId: Type.Optional(Id()),
}, { additionalProperties: false })
export type BatchFilterInput = Static<typeof BatchFilter>

export const FilterTriggerBody = Type.Object({
  filter: BatchFilter,
  pipeline: Type.Optional(Type.Unsafe<string>({ ...pipelineNoDefault, description: 'default: each document\'s last pipeline (else "default")' })),
  options: Type.Optional(BulkOptions),
}, { additionalProperties: false })

export const BatchAccepted = Type.Object({
  batchId: Type.String(),
  matched: Type.Integer({ description: 'documents matching the filter when it was accepted (the batch expands in the background)' }),
})

export const Batch = Type.Object({
  id: Type.String(),
  status: Type.String({ description: 'expanding | done | failed' }),
  filter: Type.Record(Type.String(), Type.Unknown()),
  pipeline: Type.Union([Type.String(), Type.Null()]),
  requestedBy: Type.String(),
  matched: Type.Integer(),
  created: Type.Integer({ description: 'ingestions created so far' }),
  queued: Type.Integer(),
  running: Type.Integer(),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
  superseded: Type.Integer(),
  createdAt: IsoDate,
  finishedAt: NullableDate,
})
export type BatchDto = Static<typeof Batch>
