import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Job, JobType, Queue } from 'bullmq'
import { QUEUE_NAMES, type QueueName } from '../../src/jobs/types.js'
import { schedules } from '../../src/jobs/catalogue.js'
import { authErrors, errors, NoContent } from '../../src/schemas/common.js'
import { AppError, conflict, notFound } from '../../src/lib/errors.js'

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'] as const
const COUNTED = ['waiting', 'active', 'delayed', 'completed', 'failed', 'paused'] as const

const Counts = Type.Object(Object.fromEntries(COUNTED.map(s => [s, Type.Integer()])) as Record<typeof COUNTED[number], ReturnType<typeof Type.Integer>>)
const Schedule = Type.Object({
  id: Type.String(),
  job: Type.String(),
  every: Type.Union([Type.Integer({ description: 'milliseconds' }), Type.Null()]),
  next: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
const QueueInfo = Type.Object({ name: Type.String(), counts: Counts, schedules: Type.Array(Schedule, { description: 'internal repeating jobs; their pending runs are not in `counts`' }) })
const JobInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  queue: Type.String(),
  state: Type.String(),
  data: Type.Unknown(),
  attemptsMade: Type.Integer(),
  attempts: Type.Integer({ description: 'the retry budget' }),
  failedReason: Type.Union([Type.String(), Type.Null()]),
  returnValue: Type.Unknown(),
  createdAt: Type.String({ format: 'date-time' }),
  processedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  delay: Type.Integer(),
})
const QueueParam = Type.Object({ queue: Type.String({ maxLength: 64 }) })
const JobParam = Type.Object({ queue: Type.String({ maxLength: 64 }), id: Type.String({ maxLength: 200 }) })

const iso = (ms: number | undefined): string | null => ms === undefined || ms === null ? null : new Date(ms).toISOString()

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

/** Queue and job control for operators (`jobs:manage`), over every queue the product has. */
const adminQueues: FastifyPluginAsyncTypebox = async (fastify) => {
  const queueOf = (name: string): Queue => {
    if (!(QUEUE_NAMES as readonly string[]).includes(name)) throw new AppError(404, 'not_found', `Queue not found; the queues are: ${QUEUE_NAMES.join(', ')}`)
    return fastify.queues[name as QueueName]
  }
  const jobOf = async (queue: Queue, id: string): Promise<Job> => {
    const job = await queue.getJob(id)
    if (job === undefined || job === null) throw notFound('Job')
    return job
  }

  /** The queue's internal schedules, and which of their pending runs sit in which state. */
  async function schedulesOf (name: QueueName) {
    const q = fastify.queues[name]
    const found = await q.getJobSchedulers()
    const pending = await Promise.all(found.map(async s => s.next === undefined ? null : await q.getJobState(`repeat:${s.key}:${s.next}`)))
    const mine = schedules.filter(s => s.queue === name)
    return {
      list: found.filter(s => mine.some(m => m.id === s.key)).map(s => ({ id: s.key, job: s.name, every: s.every === undefined || s.every === null ? null : Number(s.every), next: s.next === undefined ? null : new Date(s.next).toISOString() })),
      pending: pending.filter(st => st !== null && st !== 'unknown'),
    }
  }

  fastify.get('/queues', {
    config: { permission: 'jobs:manage' },
    schema: {
      tags: ['admin'],
      summary: 'Every queue with its job counts and internal schedules',
      description: '`waiting` includes prioritized jobs; `paused` is the number of waiting jobs held back when the queue is paused (0 otherwise). ' +
        'Internal schedules (the ingestion recovery sweep, purges) are listed under `schedules`; their pending runs are left out of `counts` and completed runs are not kept (failed ones are counted, and listed with `internal=true`).',
      response: { 200: Type.Array(QueueInfo), ...authErrors },
    },
  }, async () => {
    return await Promise.all(QUEUE_NAMES.map(async (name) => {
      const q = fastify.queues[name]
      const [c, paused, sched] = await Promise.all([q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'), q.isPaused(), schedulesOf(name)])
      const internal = (state: string): number => sched.pending.filter(st => st === state).length
      const waiting = Math.max(0, (c.waiting ?? 0) + (c.prioritized ?? 0) - internal('waiting') - internal('prioritized'))
      const delayed = Math.max(0, (c.delayed ?? 0) - internal('delayed'))
      return { name, counts: { waiting, active: c.active ?? 0, delayed, completed: c.completed ?? 0, failed: c.failed ?? 0, paused: paused ? waiting : 0 }, schedules: sched.list }
    }))
  })

  fastify.get('/queues/:queue/jobs', {
    config: { permission: 'jobs:manage' },
    schema: {
      tags: ['admin'],
      summary: 'Jobs of a queue, newest first',
      description: 'With `state`, the jobs in that state; without it, the newest jobs in any state. Runs of internal schedules are left out unless `internal=true`.',
      params: QueueParam,
      querystring: Type.Object({
        state: Type.Optional(Type.Union(STATES.map(s => Type.Literal(s)))),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
        internal: Type.Optional(Type.Boolean({ default: false, description: 'include runs of internal schedules' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(JobInfo) }), ...authErrors, ...errors(404) },
    },
  }, async (request) => {
    const queue = queueOf(request.params.queue)
    const limit = request.query.limit ?? 20
    const state = request.query.state
    const shown = (j: Job | undefined | null): j is Job => j !== undefined && j !== null && (request.query.internal === true || j.repeatJobKey === undefined)
    // Read a few more than `limit`: the pending run of each internal schedule may be among them.
    const read = limit - 1 + (request.query.internal === true ? 0 : schedules.length)
    if (state !== undefined) {
      const jobs = (await queue.getJobs([state as JobType], 0, read, false)).filter(shown).slice(0, limit)
      return { items: await Promise.all(jobs.map(async j => await describe(j, state))) }
    }
    // Each state's newest `limit`, then the newest `limit` of those (states read one by one, so each job has its state).
    const perState = await Promise.all(STATES.map(async st => (await queue.getJobs([st as JobType], 0, read, false)).filter(shown).map(job => ({ job, st }))))
    const newest = perState.flat().sort((a, b) => b.job.timestamp - a.job.timestamp).slice(0, limit)
    return { items: await Promise.all(newest.map(async ({ job, st }) => await describe(job, st))) }
  })

  fastify.get('/queues/:queue/jobs/:id', {
    config: { permission: 'jobs:manage' },
    schema: { tags: ['admin'], summary: 'One job', params: JobParam, response: { 200: JobInfo, ...authErrors, ...errors(404) } },
  }, async (request) => {
    return await describe(await jobOf(queueOf(request.params.queue), request.params.id))
  })

  fastify.post('/queues/:queue/jobs/:id/retry', {
    config: { permission: 'jobs:manage' },
    schema: {
      tags: ['admin'],
      summary: 'Run a failed (or completed) job again',
      description: 'Re-runs the BullMQ job. For ingestions prefer POST /ingestions/:id/retry: a dispatch job re-run for a final ingestion does nothing. 409 `invalid_job_state` for waiting/active/delayed jobs.',
      params: JobParam,
      response: { 200: JobInfo, ...authErrors, ...errors(404, 409) },
    },
  }, async (request) => {
    const job = await jobOf(queueOf(request.params.queue), request.params.id)
    const state = await job.getState()
    if (state !== 'failed' && state !== 'completed') throw conflict(`Only failed or completed jobs can be retried (state ${state})`, 'invalid_job_state')
    await job.retry(state)
    await fastify.audit(request, { action: 'job.retry', subject: `job:${job.queueName}/${String(job.id)}`, payload: { name: job.name } })
    return await describe(job)
  })

  fastify.delete('/queues/:queue/jobs/:id', {
    config: { permission: 'jobs:manage' },
    schema: { tags: ['admin'], summary: 'Remove a job (not an active one)', params: JobParam, response: { 204: NoContent, ...authErrors, ...errors(404, 409) } },
  }, async (request, reply) => {
    const job = await jobOf(queueOf(request.params.queue), request.params.id)
    try {
      await job.remove()
    } catch (err) {
      if (err instanceof AppError) throw err
      throw conflict('The job is locked (being processed) and cannot be removed now', 'invalid_job_state')
    }
    await fastify.audit(request, { action: 'job.delete', subject: `job:${job.queueName}/${String(job.id)}`, payload: { name: job.name } })
    return await reply.code(204).send(null)
  })
}

export default adminQueues
