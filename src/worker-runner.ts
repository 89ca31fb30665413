import { setTimeout as sleep } from 'node:timers/promises'
import { UnrecoverableError, Worker, type Job } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import { bullPrefix, createRedis } from './redis.js'
import { QUEUE_NAMES, type QueueName } from './jobs/index.js'
import { keepSchedules, upsertSchedules } from './jobs/schedules.js'
import { isJobName } from './jobs/catalogue.js'
import { payloadError } from './jobs/payloads.js'
import { processors } from './jobs/processors.js'
import { backoffStrategy } from './jobs/backoff.js'

export interface RunningWorkers {
  workers: Worker[]
  close: () => Promise<void>
}

/**
 * Starts one BullMQ worker per queue, dispatching by job name to its processor. A payload that
 * does not match the job's schema in the catalogue fails the job at once, without retries.
 */
export async function startWorkers (app: FastifyInstance, only: readonly QueueName[] = QUEUE_NAMES): Promise<RunningWorkers> {
  const prefix = bullPrefix(app.config)
  const workers: Worker[] = []
  const connections: Array<ReturnType<typeof createRedis>> = []
  const running = { jobs: 0 }
  for (const queue of only) {
    const connection = createRedis(app.config, { maxRetriesPerRequest: null, enableOfflineQueue: true })
    connection.on('error', () => { /* logged by the main redis plugin */ })
    connections.push(connection)
    const concurrency = queue === 'ingestion' ? app.config.INGESTION_CONCURRENCY : queue === 'webhooks' ? app.config.WEBHOOK_CONCURRENCY : app.config.WORKER_CONCURRENCY
    const limiter = queue === 'ingestion' && app.config.INGESTION_RATE_MAX > 0 ? { max: app.config.INGESTION_RATE_MAX, duration: 1000 } : undefined
    const worker = new Worker(queue, async (job: Job, token?: string) => {
      if (!isJobName(job.name)) throw new Error(`no processor for job ${job.name}`)
      const invalid = payloadError(job.name, job.data)
      if (invalid !== null) {
        app.log.error({ queue, job: job.name, jobId: job.id, invalid }, 'job payload does not match its schema; failing it without retry')
        throw new UnrecoverableError(`invalid payload: ${invalid}`)
      }
      running.jobs++
      try {
        return await processors[job.name].process(app, job, token)
      } finally {
        running.jobs--
        // With a read replica: lists see what the job wrote once it ended (src/db/replica.ts).
        await app.reads.afterWrite().catch((err: unknown) => { app.log.error({ err }, 'could not publish the primary\'s position for the read replica') })
      }
    }, { connection, prefix, concurrency, limiter, settings: { backoffStrategy: backoffStrategy(app.config) }, autorun: true, lockDuration: app.config.WORKER_LOCK_MS, stalledInterval: app.config.WORKER_LOCK_MS })
    worker.on('completed', (job) => app.metrics.jobOutcomes.inc({ queue, job: job.name, outcome: 'completed' }))
    worker.on('failed', (job, err) => {
      app.metrics.jobOutcomes.inc({ queue, job: job?.name ?? 'unknown', outcome: 'failed' })
      app.log.warn({ err, queue, job: job?.name, jobId: job?.id }, 'job failed')
    })
    worker.on('error', (err) => app.log.error({ err, queue }, 'worker error'))
    workers.push(worker)
  }
  await upsertSchedules(app, only)
  const kept = keepSchedules(app, only)
  await Promise.all(workers.map(async w => await w.waitUntilReady()))
  return {
    workers,
    close: async () => {
      kept.stop()
      // Finishes active jobs (up to the grace delay enforced by the caller) before returning.
      const graceful = Promise.allSettled(workers.map(async w => await w.close()))
      // With Redis unreachable, BullMQ's graceful close waits for the commands in the offline queue
      // of the worker's connection (maxRetriesPerRequest: null), which never finish: once no job
      // runs any more and their results had a moment to be written, the connections are closed anyway.
      const idle = (async () => {
        while (running.jobs > 0) await sleep(50)
        await sleep(1000)
      })()
      if (!await Promise.race([graceful.then(() => true), idle.then(() => false)])) {
        // BullMQ's own connections (the blocking one it made) would keep reconnecting: force them shut
        await Promise.allSettled(workers.map(async w => await w.disconnect()))
      }
      for (const c of connections) c.disconnect()
    },
  }
}
