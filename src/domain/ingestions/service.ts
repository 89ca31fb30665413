import { notFound } from '../../lib/errors.js'
import type { ActorContext, IngestionDeps } from './deps.js'
import { dtosOf, findIngestion, listIngestions, type IngestionDto, type IngestionRow, type ListQuery } from './store.js'
import { announce, note, transition, type Transition } from './transitions.js'
import { triggerIngestions, triggerOne, type TriggerInput } from './trigger.js'
import { cancelIngestion, loadIngestionFor, receiveCallback, retryIngestion, type CallbackBody } from './lifecycle.js'
import { enqueueDispatch } from './jobs.js'
import { createBatch, getBatch, type BatchInput } from './batches.js'
import type { StatusMessage } from '../ingestion-events.js'
import { documentChanged, documentPurged, documentRestored, documentTrashed, type ChangeContext, type IndexedDocument } from './follow.js'

/**
 * The ingestion service: every ingestion operation, bound to its dependencies. Fastify decorates
 * the app with it (plugins/app/ingestions.ts); routes and the worker's jobs call it. Actions take
 * the actor's context (who, with which permissions, from where) and write their own audit rows.
 */
export function createIngestionService (deps: IngestionDeps) {
  return {
    /** The row, or null (no access check: callbacks and the worker). */
    find: async (id: string): Promise<IngestionRow | null> => await findIngestion(deps.db, id),
    /** The row if the actor may see it, and whether they may change it. */
    loadFor: async (ctx: Pick<ActorContext, 'actorId' | 'can'>, id: string) => await loadIngestionFor(deps, ctx, id),
    /** One ingestion with its events; 404 when the actor may not see it. */
    get: async (ctx: Pick<ActorContext, 'actorId' | 'can'>, id: string): Promise<IngestionDto> => {
      const found = await loadIngestionFor(deps, ctx, id)
      if (found === null) throw notFound('Ingestion')
      return (await dtosOf(deps.db, [found.row]))[0]!
    },
    list: async (ctx: Pick<ActorContext, 'actorId' | 'can'>, q: ListQuery, hint?: Promise<string | null> | null) => deps.reads === undefined ? await listIngestions(deps.db, ctx, q) : await deps.reads(async db => await listIngestions(db, ctx, q), hint),
    trigger: async (ctx: ActorContext, documentId: string, input: TriggerInput): Promise<IngestionDto> => await triggerOne(deps, ctx, documentId, input),
    triggerMany: async (ctx: ActorContext, documentIds: string[], input: TriggerInput): Promise<IngestionDto[]> => await triggerIngestions(deps, ctx, documentIds, input),
    /** POST /ingestions with `filter`: a bulk re-run, expanded by the worker. */
    createBatch: async (ctx: ActorContext, input: BatchInput) => await createBatch(deps, ctx, input),
    getBatch: async (ctx: Pick<ActorContext, 'actorId' | 'can'>, id: string) => await getBatch(deps, ctx, id),
    cancel: async (ctx: ActorContext, id: string): Promise<IngestionDto> => await cancelIngestion(deps, ctx, id),
    retry: async (ctx: ActorContext, id: string): Promise<IngestionDto> => await retryIngestion(deps, ctx, id),
    /** A callback whose signature (`sha256=<hex>`) the route verified: applied once per signature. */
    receiveCallback: async (id: string, signature: string, body: CallbackBody) => await receiveCallback(deps, id, signature, body),
    // What the worker's jobs (src/jobs/ingestion/) build on.
    transition: async (id: string, t: Transition): Promise<boolean> => await transition(deps, id, t),
    note: async (row: Pick<IngestionRow, 'id'>, status: string, type: string, message: string, data?: Record<string, unknown>): Promise<void> => await note(deps, row, status, type, message, data),
    announce: async (msg: StatusMessage): Promise<void> => await announce(deps, msg),
    enqueueDispatch: async (row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> => await enqueueDispatch(deps, row),
    // The index follows the document (follow.ts): each returns the ingestion it queued, if any.
    /** After a version was added or restored (the versions service's hook). */
    documentChanged: async (ctx: ChangeContext, documentId: string): Promise<string | null> => await documentChanged(deps, ctx, documentId),
    documentTrashed: async (ctx: ChangeContext, doc: IndexedDocument): Promise<string | null> => await documentTrashed(deps, ctx, doc),
    documentRestored: async (ctx: ChangeContext, documentId: string): Promise<string | null> => await documentRestored(deps, ctx, documentId),
    /** After the row was deleted for good (`doc`: the row as it was). */
    documentPurged: async (ctx: ChangeContext, doc: IndexedDocument): Promise<string | null> => await documentPurged(deps, ctx, doc),
  }
}

export type IngestionService = ReturnType<typeof createIngestionService>
