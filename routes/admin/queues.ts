import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { COUNTED_STATES as COUNTED, JOB_STATES as STATES } from '../../src/jobs/queue-admin.js'
import { auditContext } from '../../plugins/app/audit.js'
import { authErrors, errors, NoContent } from '../../src/schemas/common.js'

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

/** Queue and job control for operators (`jobs:manage`), over every queue the product has (src/jobs/queue-admin.ts). */
const adminQueues: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = fastify.queueAdmin

  fastify.get('/queues', {
    config: { permission: 'jobs:manage' },
    schema: {
      tags: ['admin'],
      summary: 'Every queue with its job counts and internal schedules',
      description: '`waiting` includes prioritized jobs; `paused` is the number of waiting jobs held back when the queue is paused (0 otherwise). ' +
        'Internal schedules (the ingestion recovery sweep, purges) are listed under `schedules`; their pending runs are left out of `counts` and completed runs are not kept (failed ones are counted, and listed with `internal=true`).',
      response: { 200: Type.Array(QueueInfo), ...authErrors },
    },
  }, async () => await admin.overview())

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
  }, async (request) => await admin.list(request.params.queue, { state: request.query.state, limit: request.query.limit ?? 20, internal: request.query.internal === true }))

  fastify.get('/queues/:queue/jobs/:id', {
    config: { permission: 'jobs:manage' },
    schema: { tags: ['admin'], summary: 'One job', params: JobParam, response: { 200: JobInfo, ...authErrors, ...errors(404) } },
  }, async (request) => await admin.get(request.params.queue, request.params.id))

  fastify.post('/queues/:queue/jobs/:id/retry', {
    config: { permission: 'jobs:manage' },
    schema: {
      tags: ['admin'],
      summary: 'Run a failed (or completed) job again',
      description: 'Re-runs the BullMQ job. For ingestions prefer POST /ingestions/:id/retry: a dispatch job re-run for a final ingestion does nothing. 409 `invalid_job_state` for waiting/active/delayed jobs.',
      params: JobParam,
      response: { 200: JobInfo, ...authErrors, ...errors(404, 409) },
    },
  }, async (request) => await admin.retry(auditContext(request), request.params.queue, request.params.id))

  fastify.delete('/queues/:queue/jobs/:id', {
    config: { permission: 'jobs:manage' },
    schema: { tags: ['admin'], summary: 'Remove a job (not an active one)', params: JobParam, response: { 204: NoContent, ...authErrors, ...errors(404, 409) } },
  }, async (request, reply) => {
    await admin.remove(auditContext(request), request.params.queue, request.params.id)
    return await reply.code(204).send(null)
  })
}

export default adminQueues
