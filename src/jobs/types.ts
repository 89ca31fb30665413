import type { FastifyInstance } from 'fastify'
import type { Job, JobsOptions } from 'bullmq'
import type { Config } from '../config.js'

export const QUEUE_NAMES = ['ingestion', 'media', 'cleanup'] as const
export type QueueName = typeof QUEUE_NAMES[number]

/** One job kind: which queue it runs on, its name, and what the worker does with it. */
export interface JobDefinition<T = unknown> {
  queue: QueueName
  name: string
  /** Default options applied when the API enqueues it (attempts, backoff...). */
  options?: JobsOptions
  process: (app: FastifyInstance, job: Job<T>) => Promise<unknown>
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
