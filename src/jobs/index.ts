import type { JobDefinition, ScheduleDefinition } from './types.js'
import noop from './noop.js'
import auditPurge from './audit-purge.js'
import ingestionDispatch from './ingestion-dispatch.js'
import ingestionCallbackTimeout from './ingestion-callback-timeout.js'
import ingestionRecovery, { RECOVERY_JOB } from './ingestion-recovery.js'
import documentThumbnail from './thumbnail.js'
import deleteObjects from './delete-objects.js'
import trashPurge, { TRASH_PURGE_JOB } from './trash-purge.js'
import uploadsSweep, { UPLOADS_SWEEP_JOB } from './uploads-sweep.js'
import storageReconcile, { STORAGE_RECONCILE_JOB } from './storage-reconcile.js'

/** Every job kind the worker knows. Add a file per job and list it here. */
export const jobs: JobDefinition<any>[] = [noop, auditPurge, ingestionDispatch, ingestionCallbackTimeout, ingestionRecovery,
  documentThumbnail, deleteObjects, trashPurge, uploadsSweep, storageReconcile]

/** Repeating jobs the worker keeps scheduled (idempotent upserts at worker start). */
export const schedules: ScheduleDefinition[] = [
  { id: 'audit-purge-hourly', queue: 'cleanup', job: 'audit-purge', every: 3600_000 },
  { id: 'ingestion-recovery', queue: 'ingestion', job: RECOVERY_JOB, every: (config) => config.INGESTION_RECOVERY_INTERVAL_MS },
  { id: 'trash-purge-hourly', queue: 'cleanup', job: TRASH_PURGE_JOB, every: 3600_000 },
  { id: 'uploads-sweep', queue: 'cleanup', job: UPLOADS_SWEEP_JOB, every: 5 * 60_000 },
  { id: 'storage-reconcile-daily', queue: 'cleanup', job: STORAGE_RECONCILE_JOB, every: 24 * 3600_000 },
]

/**
 * Runs of internal schedules leave no completed entry (the recovery sweep alone would leave 2,880 a
 * day beside the real jobs); a few failed ones stay for operators to read.
 */
export const SCHEDULED_RUN_OPTIONS = { removeOnComplete: true, removeOnFail: { count: 20 } } as const

export * from './types.js'
