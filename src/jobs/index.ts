import type { JobDefinition } from './types.js'
import { processors } from './processors.js'

/**
 * Worker side: every processor (this module loads them all, sharp included; the API imports
 * src/jobs/catalogue.ts and src/jobs/enqueue.ts instead). A new job: an entry in the catalogue,
 * a file with its processor, a line in src/jobs/processors.ts.
 */
export const jobs: JobDefinition<any>[] = Object.values(processors)

/**
 * Runs of internal schedules leave no completed entry (the recovery sweep alone would leave 2,880 a
 * day beside the real jobs); a few failed ones stay for operators to read.
 */
export const SCHEDULED_RUN_OPTIONS = { removeOnComplete: true, removeOnFail: { count: 20 } } as const

export { schedules, catalogue, jobIdOf, optionsOf, isJobName, JOB_NAMES, type JobName, type Payload, type JobSpec } from './catalogue.js'
export type { Enqueue, EnqueueOptions } from './enqueue.js'
export * from './types.js'
