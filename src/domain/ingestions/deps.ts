import type { RedisClient as Redis } from '../../redis.js'
import type { JobsOptions } from 'bullmq'
import type { Db } from '../../db.js'
import type { Permission } from '../permissions.js'

/** A job as the domain sees it: enough to tell whether it is still running, and to drop it. */
export interface QueuedJob {
  isActive: () => Promise<boolean>
  remove: () => Promise<void>
}

/** The ingestion queue, narrowed to what the domain does with it (plugins/app/ingestions.ts wires it to BullMQ). */
export interface IngestionQueue {
  /** False while the producer connection is down: BullMQ would wait for it forever, so fail fast instead. */
  ready: () => boolean
  add: (name: string, data: unknown, opts: JobsOptions & { jobId: string }) => Promise<unknown>
  remove: (jobId: string) => Promise<unknown>
  getJob: (jobId: string) => Promise<QueuedJob | undefined>
}

export interface Log {
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

/** Everything the ingestion service touches. */
export interface IngestionDeps {
  db: Db
  /** Status messages to SSE clients (published on `key('ingestion-events')`), the callbacks' replay claims. */
  redis: Pick<Redis, 'publish' | 'set' | 'get' | 'eval'>
  key: (...parts: string[]) => string
  queue: IngestionQueue
  clock: () => Date
  log: Log
  /** The retry budget and the base of the exponential backoff of every dispatch job. */
  dispatch: { attempts: number, backoffMs: number }
}

/** Who acts, with which permissions, from where: for access checks and the audit rows. */
export interface ActorContext {
  actorId: string
  can: (p: Permission) => boolean
  ip: string | null
  userAgent: string | null
  requestId: string
  /**
   * False when the actor lacks the permission the route declares and the route left that answer to
   * the object lookup (plugins/app/auth.ts `permissionAfterLookup`): a 403, once the object is known
   * to be visible to them (an invisible one is a 404 either way).
   */
  permitted?: boolean
}

/** The actor as the document access rule (document-access.ts) takes it. */
export const actorOf = (ctx: Pick<ActorContext, 'actorId' | 'can'>): { id: string, can: (p: Permission) => boolean } => ({ id: ctx.actorId, can: ctx.can })
