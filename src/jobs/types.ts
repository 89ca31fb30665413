import type { FastifyInstance } from 'fastify'
import type { Job, JobsOptions } from 'bullmq'
import type { Config } from '../config.js'
import { catalogue, type JobName, type Payload } from './catalogue.js'

export const QUEUE_NAMES = ['ingestion', 'media', 'cleanup', 'webhooks'] as const
export type QueueName = typeof QUEUE_NAMES[number]

/** One job kind: which queue it runs on, its name, and what the worker does with it. */
export interface JobDefinition<T = unknown> {
  queue: QueueName
  name: string
  /** Unused: the catalogue (src/jobs/catalogue.ts) holds every job's default options. */
  options?: JobsOptions
  /** `token`: the worker's lock token of the job (for `job.moveToDelayed`). */
  process: (app: FastifyInstance, job: Job<T>, token?: string) => Promise<unknown>
}

/** A job the worker schedules itself on a repeat (cron pattern or interval in ms). */
export interface ScheduleDefinition {
  id: string
  queue: QueueName
  job: string
  /** Interval in ms, or read from the config (0 there: the schedule is off and removed). */
  every?: number | ((config: Config) => number)
  pattern?: string
}

/** How long finished jobs stay in Redis (for the admin API): bounded, so Redis (noeviction) never fills up. */
export const JOB_RETENTION = { removeOnComplete: { age: 24 * 3600, count: 10000 }, removeOnFail: { age: 7 * 24 * 3600 } } satisfies JobsOptions

export const defineJob = <T>(def: JobDefinition<T>): JobDefinition<T> => def

/** The processor of catalogued job `name` (worker side): its queue and payload type come from the catalogue. */
export const processorOf = <N extends JobName>(def: { name: N, process: (app: FastifyInstance, job: Job<Payload<N>>, token?: string) => Promise<unknown> }): JobDefinition<Payload<N>> & { name: N } =>
  ({ queue: catalogue[def.name].queue, name: def.name, process: def.process })
