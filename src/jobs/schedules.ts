import type { FastifyInstance } from 'fastify'
import type { Queue } from 'bullmq'
import { schedules } from './catalogue.js'
import { SCHEDULED_RUN_OPTIONS } from './index.js'
import type { QueueName } from './types.js'

type App = Pick<FastifyInstance, 'config' | 'queues' | 'log'>

const everyOf = (app: App, s: typeof schedules[number]): number =>
  typeof s.every === 'function' ? s.every(app.config) : s.every ?? 60_000

/** Upserts (or, at interval 0, removes) every schedule of these queues: idempotent, BullMQ keeps the next run. */
export async function upsertSchedules (app: App, only: readonly QueueName[]): Promise<void> {
  for (const s of schedules) {
    if (!only.includes(s.queue)) continue
    const every = everyOf(app, s)
    if (s.pattern === undefined && every === 0) {
      await app.queues[s.queue].removeJobScheduler(s.id)
      continue
    }
    await app.queues[s.queue].upsertJobScheduler(s.id, s.pattern !== undefined ? { pattern: s.pattern } : { every }, { name: s.job, data: {}, opts: SCHEDULED_RUN_OPTIONS })
  }
}

/** The ids of the schedules that are on but gone from Redis (the scheduler, or its next run). */
export async function missingSchedules (app: App, only: readonly QueueName[]): Promise<string[]> {
  const missing: string[] = []
  for (const s of schedules) {
    if (!only.includes(s.queue) || (s.pattern === undefined && everyOf(app, s) === 0)) continue
    const q: Queue = app.queues[s.queue]
    const scheduler = await q.getJobScheduler(s.id)
    const next = scheduler?.next
    if (next == null || await q.getJob(`repeat:${s.id}:${next}`) === undefined) missing.push(s.id)
  }
  return missing
}

/**
 * Keeps the schedules in Redis for as long as the worker runs. A Redis that lost its data (a
 * restart without persistence, a failover that lost the last writes, an eviction) forgets them
 * and nothing would bring them back before the next worker restart; so they are re-created when
 * a queue connection becomes ready again and checked every `SCHEDULE_CHECK_INTERVAL_MS`.
 */
export function keepSchedules (app: App, only: readonly QueueName[]): { stop: () => void } {
  let running: Promise<void> | null = null
  const check = (why: string): void => {
    if (running !== null) return
    running = (async () => {
      const missing = await missingSchedules(app, only)
      if (missing.length === 0) return
      await upsertSchedules(app, only)
      app.log.warn({ schedules: missing, why }, 'redis had lost schedules; re-created them')
    })().catch((err: unknown) => { app.log.warn({ err }, 'could not check the schedules in redis') })
      .finally(() => { running = null })
  }
  const timer = setInterval(() => { check('periodic check') }, app.config.SCHEDULE_CHECK_INTERVAL_MS)
  timer.unref()
  const onReady = (): void => { check('redis connection ready again') }
  type Emitter = { on: (e: 'ready', fn: () => void) => unknown, off: (e: 'ready', fn: () => void) => unknown }
  // The queues' own connection (plugins/app/queue.ts passes one ioredis instance to every queue).
  const attached = new Set(only.map(name => app.queues[name].opts.connection as unknown as Emitter).filter(c => typeof c.on === 'function'))
  for (const c of attached) c.on('ready', onReady)
  return {
    stop: () => {
      clearInterval(timer)
      for (const c of attached) c.off('ready', onReady)
    },
  }
}
