import type { Job, JobType, Queue } from 'bullmq'
import { QUEUE_NAMES, type QueueName } from './types.js'
import { schedules } from './catalogue.js'
import { AppError, conflict, notFound } from '../lib/errors.js'
import type { AuditContext, RecordAudit } from '../domain/audit.js'

/** Job states an operator can list by; COUNTED are the ones the overview counts. */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'] as const
export const COUNTED_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'paused'] as const
export type JobState = typeof JOB_STATES[number]

const iso = (ms: number | undefined | null): string | null => ms === undefined || ms === null ? null : new Date(ms).toISOString()

/** A job as the admin API shows it. */
async function describe (job: Job, state?: string) {
  return {
    id: String(job.id),
    name: job.name,
    queue: job.queueName,
    state: state ?? await job.getState(),
    data: job.data ?? null,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    failedReason: job.failedReason ?? null,
    returnValue: job.returnvalue ?? null,
    createdAt: new Date(job.timestamp).toISOString(),
    processedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
    delay: job.delay ?? 0,
  }
}

export interface QueueAdminDeps {
  queues: Record<QueueName, Queue>
  audit: RecordAudit
}

/**
 * Queue and job control for operators (`jobs:manage`): counts, listing, one job, retry, remove.
 * Runs of the internal schedules (catalogue `schedules`) are told apart from the product's jobs.
 */
export function queueAdmin (deps: QueueAdminDeps) {
  const queueOf = (name: string): Queue => {
    if (!(QUEUE_NAMES as readonly string[]).includes(name)) throw new AppError(404, 'not_found', `Queue not found; the queues are: ${QUEUE_NAMES.join(', ')}`)
    return deps.queues[name as QueueName]
  }
  const jobOf = async (queue: string, id: string): Promise<Job> => {
    const job = await queueOf(queue).getJob(id)
    if (job === undefined || job === null) throw notFound('Job')
    return job
  }

  /** The queue's internal schedules, and which of their pending runs sit in which state. */
  async function schedulesOf (name: QueueName) {
    const q = deps.queues[name]
    const found = await q.getJobSchedulers()
    const pending = await Promise.all(found.map(async s => s.next === undefined ? null : await q.getJobState(`repeat:${s.key}:${s.next}`)))
    const mine = schedules.filter(s => s.queue === name)
    return {
      list: found.filter(s => mine.some(m => m.id === s.key)).map(s => ({ id: s.key, job: s.name, every: s.every === undefined || s.every === null ? null : Number(s.every), next: iso(s.next) })),
      pending: pending.filter(st => st !== null && st !== 'unknown'),
    }
  }

  return {
    /** Every queue: job counts without the internal schedules' pending runs, and the schedules. */
    async overview () {
      return await Promise.all(QUEUE_NAMES.map(async (name) => {
        const q = deps.queues[name]
        const [c, paused, sched] = await Promise.all([q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'), q.isPaused(), schedulesOf(name)])
        const internal = (state: string): number => sched.pending.filter(st => st === state).length
        const waiting = Math.max(0, (c.waiting ?? 0) + (c.prioritized ?? 0) - internal('waiting') - internal('prioritized'))
        const delayed = Math.max(0, (c.delayed ?? 0) - internal('delayed'))
        return { name, counts: { waiting, active: c.active ?? 0, delayed, completed: c.completed ?? 0, failed: c.failed ?? 0, paused: paused ? waiting : 0 }, schedules: sched.list }
      }))
    },

    /** The newest `limit` jobs of a queue, in `state` or in any state; internal runs only when asked. */
    async list (name: string, q: { state?: JobState, limit: number, internal: boolean }) {
      const queue = queueOf(name)
      const shown = (j: Job | undefined | null): j is Job => j !== undefined && j !== null && (q.internal || j.repeatJobKey === undefined)
      // Read a few more than `limit`: the pending run of each internal schedule may be among them.
      const read = q.limit - 1 + (q.internal ? 0 : schedules.length)
      if (q.state !== undefined) {
        const state = q.state
        const jobs = (await queue.getJobs([state as JobType], 0, read, false)).filter(shown).slice(0, q.limit)
        return { items: await Promise.all(jobs.map(async j => await describe(j, state))) }
      }
      // Each state's newest `limit`, then the newest `limit` of those (states read one by one, so each job has its state).
      const perState = await Promise.all(JOB_STATES.map(async st => (await queue.getJobs([st as JobType], 0, read, false)).filter(shown).map(job => ({ job, st }))))
      const newest = perState.flat().sort((a, b) => b.job.timestamp - a.job.timestamp).slice(0, q.limit)
      return { items: await Promise.all(newest.map(async ({ job, st }) => await describe(job, st))) }
    },

    async get (name: string, id: string) {
      return await describe(await jobOf(name, id))
    },

    /** Runs a failed or completed job again (409 `invalid_job_state` otherwise); audited. */
    async retry (ctx: AuditContext, name: string, id: string) {
      const job = await jobOf(name, id)
      const state = await job.getState()
      if (state !== 'failed' && state !== 'completed') throw conflict(`Only failed or completed jobs can be retried (state ${state})`, 'invalid_job_state')
      await job.retry(state)
      await deps.audit(ctx, { action: 'job.retry', subject: `job:${job.queueName}/${String(job.id)}`, payload: { name: job.name } })
      return await describe(job)
    },

    /** Removes a job that is not locked by a worker (409 `invalid_job_state` if it is); audited. */
    async remove (ctx: AuditContext, name: string, id: string): Promise<void> {
      const job = await jobOf(name, id)
      try {
        await job.remove()
      } catch {
        throw conflict('The job is locked (being processed) and cannot be removed now', 'invalid_job_state')
      }
      await deps.audit(ctx, { action: 'job.delete', subject: `job:${job.queueName}/${String(job.id)}`, payload: { name: job.name } })
    },
  }
}
