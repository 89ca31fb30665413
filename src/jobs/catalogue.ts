import { Type, type Static, type TObject } from '@sinclair/typebox'
import type { JobsOptions } from 'bullmq'
import type { Config } from '../config.js'
import type { QueueName, ScheduleDefinition } from './types.js'

/**
 * Every job kind Quire runs: its queue, payload schema, default options and job-id convention.
 * The API enqueues from here (plugins/app/queue.ts); only the worker imports the processors
 * (src/jobs/processors.ts), so enqueueing never loads what a job needs to run (sharp, HTTP agents).
 * Imports nothing at run time but TypeBox.
 */
export interface JobSpec<S extends TObject = TObject> {
  queue: QueueName
  payload: S
  /** Default options of every enqueue (merged over JOB_RETENTION, under the caller's); a function when they come from config. */
  options?: JobsOptions | ((config: Config) => JobsOptions)
  /** The BullMQ job id, derived from the payload: enqueueing the same payload twice adds one job. */
  jobId?: (data: Static<S>) => string
}

const spec = <S extends TObject>(s: JobSpec<S>): JobSpec<S> => s

/** Ids are canonical (lower-case) UUIDs, as everywhere else in Quire. */
const JobId = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' })
/** Scheduled sweeps take an optional clock (tests move it); scheduled runs send `{}`. */
const Clock = Type.Object({ now: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false })
const Empty = Type.Object({}, { additionalProperties: false })
/** A scan retries while clamd is away: at SCAN_RETRY_MAX_MS (5 min) apart, this is years. */
export const SCAN_ATTEMPTS = 1_000_000
/** The scan job of one content version (version 1 keeps the id it always had). */
export const scanJobId = (documentId: string, version?: number): string => version === undefined || version === 1 ? `scan-${documentId}` : `scan-${documentId}-v${version}`

export const catalogue = {
  /** Health probe for the pipeline: the worker answers with the time it ran. */
  noop: spec({ queue: 'cleanup', payload: Type.Object({ echo: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false }) }),
  'audit-purge': spec({ queue: 'cleanup', payload: Empty, options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 } } }),
  /** Sends one ingestion to the backend. Job id = ingestion id; retry budget and backoff from config. */
  'ingestion-dispatch': spec({
    queue: 'ingestion',
    payload: Type.Object({ ingestionId: JobId, requestId: Type.Union([Type.String({ maxLength: 200 }), Type.Null()]) }, { additionalProperties: false }),
    options: (c) => ({ attempts: c.INGESTION_MAX_ATTEMPTS, backoff: { type: 'exponential', delay: c.INGESTION_BACKOFF_MS, jitter: 0.5 } }),
    jobId: d => d.ingestionId,
  }),
  /** Fails an ingestion accepted with 202 whose callback never came; enqueued with a `delay`. */
  'ingestion-callback-timeout': spec({
    queue: 'ingestion',
    payload: Type.Object({ ingestionId: JobId }, { additionalProperties: false }),
    options: { attempts: 5, backoff: { type: 'exponential', delay: 1000 } },
    jobId: d => `${d.ingestionId}.cb`,
  }),
  'ingestion-recovery': spec({ queue: 'ingestion', payload: Empty }),
  /** Expands a bulk re-run (POST /ingestions with `filter`) into ingestions, page by page from its cursor. */
  'ingestion-batch': spec({
    queue: 'ingestion',
    payload: Type.Object({ batchId: JobId }, { additionalProperties: false }),
    options: { attempts: 10, backoff: { type: 'exponential', delay: 2_000 } },
    jobId: d => `batch-${d.batchId}`,
  }),
  /** One job per content version (`version` absent = 1); the processor skips a version no longer current. */
  'document-thumbnail': spec({
    queue: 'media',
    payload: Type.Object({ documentId: JobId, version: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
    options: { attempts: 3, backoff: { type: 'exponential', delay: 2_000 } },
    jobId: d => d.version === undefined || d.version === 1 ? `thumbnail-${d.documentId}` : `thumbnail-${d.documentId}-v${d.version}`,
  }),
  /** Deletes a document's versions beyond VERSIONS_KEEP (objects first, then rows): retried until done. */
  'versions-prune': spec({
    queue: 'cleanup',
    payload: Type.Object({ documentId: JobId }, { additionalProperties: false }),
    options: { attempts: 25, backoff: { type: 'exponential', delay: 5_000 }, removeOnFail: false },
  }),
  /**
   * Streams a new object to clamd (CLAMD_URL). While clamd is unreachable it retries for as long
   * as it takes (fail closed): backoff `scan-retry` doubles from SCAN_RETRY_MS up to SCAN_RETRY_MAX_MS
   * (src/jobs/backoff.ts). One job per content version (`version` absent = 1).
   */
  'document-scan': spec({
    queue: 'media',
    payload: Type.Object({ documentId: JobId, version: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
    options: { attempts: SCAN_ATTEMPTS, backoff: { type: 'scan-retry' }, removeOnFail: { age: 30 * 24 * 3600 } },
    jobId: d => scanJobId(d.documentId, d.version),
  }),
  /** Queues again the thumbnails of documents left in `processing` without a live job (src/jobs/thumbnail-sweep.ts). */
  'thumbnail-sweep': spec({ queue: 'cleanup', payload: Clock, options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 } } }),
  /** Queues again the scans of documents left in `scanning` without a live job (a failed enqueue, a lost job). */
  'scan-sweep': spec({ queue: 'cleanup', payload: Clock, options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 } } }),
  'delete-objects': spec({
    queue: 'cleanup',
    payload: Type.Object({ keys: Type.Array(Type.String({ minLength: 1, maxLength: 512 })) }, { additionalProperties: false }),
    options: { attempts: 25, backoff: { type: 'exponential', delay: 5_000 }, removeOnFail: false },
  }),
  'trash-purge': spec({ queue: 'cleanup', payload: Clock, options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 } } }),
  'uploads-sweep': spec({ queue: 'cleanup', payload: Clock, options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 } } }),
  'storage-reconcile': spec({ queue: 'cleanup', payload: Clock, options: { attempts: 3, backoff: { type: 'exponential', delay: 60_000 } } }),
  /** Moves new outbox rows to deliveries and queues them (src/domain/webhooks/relay.ts). */
  'webhook-relay': spec({ queue: 'webhooks', payload: Empty }),
  'webhook-purge': spec({ queue: 'cleanup', payload: Clock, options: { attempts: 3, backoff: { type: 'exponential', delay: 60_000 } } }),
  /**
   * One delivery's attempts (src/domain/webhooks/deliver.ts): HTTP retries are delays of this job,
   * BullMQ's own attempts only cover a failure to run it (MySQL down). One job per retry window
   * (`window` = its end, ms): a redelivery is a new job.
   */
  'webhook-deliver': spec({
    queue: 'webhooks',
    payload: Type.Object({ deliveryId: JobId, endpointId: JobId, window: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
    options: { attempts: 20, backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 }, removeOnComplete: { age: 3600, count: 1000 } },
    jobId: d => `${d.deliveryId}.${d.window}`,
  }),
  /**
   * New deliveries of one endpoint, in id order (src/domain/webhooks/batch.ts), as the relay
   * queued them: the fast path; a delivery to retry goes on as a `webhook-deliver` job, those
   * that had to wait as a follow-up batch (`round` + 1). Id: first delivery, count, the first
   * one's retry window end (`window`, ms) and the round.
   */
  'webhook-batch': spec({
    queue: 'webhooks',
    payload: Type.Object({ endpointId: JobId, deliveryIds: Type.Array(JobId, { minItems: 1, maxItems: 1000 }), window: Type.Integer({ minimum: 0 }), round: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }),
    options: { attempts: 20, backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 }, removeOnComplete: { age: 3600, count: 1000 } },
    jobId: d => `b.${d.deliveryIds[0]}.${d.deliveryIds.length}.${d.window}${d.round !== undefined ? `.${d.round}` : ''}`,
  }),
} as const

export type Catalogue = typeof catalogue
export type JobName = keyof Catalogue
export type Payload<N extends JobName> = Static<Catalogue[N]['payload']>

export const JOB_NAMES = Object.keys(catalogue) as JobName[]
export const isJobName = (name: string): name is JobName => Object.hasOwn(catalogue, name)

/** The job's id for this payload (its catalogue convention), or undefined when BullMQ picks one. */
export function jobIdOf<N extends JobName> (name: N, data: Payload<N>): string | undefined {
  const s = catalogue[name] as JobSpec
  return s.jobId?.(data)
}

/** The job's default options under this config. */
export function optionsOf (name: JobName, config: Config): JobsOptions {
  const o = (catalogue[name] as JobSpec).options
  return typeof o === 'function' ? o(config) : o ?? {}
}

/** Repeating jobs the worker keeps scheduled (idempotent upserts at worker start); runs get `{}`. */
export const schedules: Array<ScheduleDefinition & { job: JobName }> = [
  { id: 'audit-purge-hourly', queue: 'cleanup', job: 'audit-purge', every: 3600_000 },
  { id: 'ingestion-recovery', queue: 'ingestion', job: 'ingestion-recovery', every: (config) => config.INGESTION_RECOVERY_INTERVAL_MS },
  { id: 'trash-purge-hourly', queue: 'cleanup', job: 'trash-purge', every: 3600_000 },
  { id: 'uploads-sweep', queue: 'cleanup', job: 'uploads-sweep', every: 5 * 60_000 },
  { id: 'thumbnail-sweep', queue: 'cleanup', job: 'thumbnail-sweep', every: (config) => config.THUMBNAIL_SWEEP_INTERVAL_MS },
  { id: 'scan-sweep', queue: 'cleanup', job: 'scan-sweep', every: (config) => config.CLAMD_URL === '' ? 0 : 5 * 60_000 },
  { id: 'storage-reconcile-daily', queue: 'cleanup', job: 'storage-reconcile', every: 24 * 3600_000 },
  { id: 'webhook-relay', queue: 'webhooks', job: 'webhook-relay', every: (config) => config.WEBHOOK_RELAY_INTERVAL_MS },
  { id: 'webhook-purge-hourly', queue: 'cleanup', job: 'webhook-purge', every: 3600_000 },
]
