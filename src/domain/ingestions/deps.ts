import type { RedisClient as Redis } from '../../redis.js'
import type { Enqueue } from '../../jobs/enqueue.js'
import type { Db } from '../../db.js'
import type { Permission } from '../permissions.js'

/** A job as the domain sees it: enough to tell whether it is still running, and to drop it. */
export interface QueuedJob {
  isActive: () => Promise<boolean>
  remove: () => Promise<void>
}

/** The ingestion queue, narrowed to what the domain does with it (plugins/app/ingestions.ts wires it to BullMQ). */
export interface IngestionQueue {
  /** The typed enqueue of the job catalogue (plugins/app/queue.ts); with `timeoutMs` it fails fast while Redis is down. */
  enqueue: Enqueue
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
  /** The list reads: on the read replica when it caught up (src/db/replica.ts), else on `db`. */
  reads?: <T>(fn: (db: Db) => Promise<T>, hint?: Promise<string | null> | null) => Promise<T>
  /** With a read replica, the router's `afterWrite`: publishes the primary's position before a status message leaves. */
  published?: () => Promise<void>
  /** Status messages to SSE clients (published on `key('ingestion-events')`), the callbacks' replay claims. */
  redis: Pick<Redis, 'publish' | 'set' | 'get' | 'eval'>
  key: (...parts: string[]) => string
  queue: IngestionQueue
  clock: () => Date
  log: Log
  /** AUTO_REINGEST: a new version of a document in the index is sent again (docs/ingestion.md, "Lifecycle"). */
  autoReingest: boolean
}

/** Who acts, with which permissions, from where: for access checks and the audit rows. */
export interface ActorContext {
  actorId: string
  can: (p: Permission) => boolean
  ip: string | null
  userAgent: string | null
  requestId: string
  /** The API key the request was authenticated with, if any (recorded in the audit rows). */
  apiKeyId?: string | null
  /**
   * False when the actor lacks the permission the route declares and the route left that answer to
   * the object lookup (plugins/app/auth.ts `permissionAfterLookup`): a 403, once the object is known
   * to be visible to them (an invisible one is a 404 either way).
   */
  permitted?: boolean
}

/** The actor as the document access rule (document-access.ts) takes it. */
export const actorOf = (ctx: Pick<ActorContext, 'actorId' | 'can'>): { id: string, can: (p: Permission) => boolean } => ({ id: ctx.actorId, can: ctx.can })
