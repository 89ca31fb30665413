/*
 * The job system's declarations, safe to import from the API: the catalogue (src/jobs/catalogue.ts)
 * and the queue names. The processors (src/jobs/processors.ts, sharp included) are the worker's
 * alone. A new job: an entry in the catalogue, a file with its processor, a line in processors.ts.
 */

/**
 * Runs of internal schedules leave no completed entry (the recovery sweep alone would leave 2,880 a
 * day beside the real jobs); a few failed ones stay for operators to read.
 */
export const SCHEDULED_RUN_OPTIONS = { removeOnComplete: true, removeOnFail: { count: 20 } } as const

export { schedules } from './catalogue.js'
export * from './types.js'
