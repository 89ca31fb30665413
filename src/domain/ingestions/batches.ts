import { eq, sql } from 'drizzle-orm'
import { ingestionBatches, ingestions } from '../../../drizzle/schema/index.js'
import { newId, isId } from '../../lib/ids.js'
import { forbidden, notFound } from '../../lib/errors.js'
import { normalizeTag } from '../documents.js'
import { loadUserState } from '../auth-state.js'
import { effectivePermissions, type Permission } from '../permissions.js'
import { ruleSql } from '../access/document-sql.js'
import { actorOf, type ActorContext, type IngestionDeps } from './deps.js'
import { recordAudit } from './audit.js'
import { checkOptions } from './trigger.js'
import type { BatchDto, BatchFilterInput } from '../../schemas/ingestions.js'

/**
 * Bulk re-run by filter (POST /ingestions with `filter`): the request counts the matching
 * documents (the index of documents.index_state where the filter names one), records the batch
 * and queues its expansion; the worker's `ingestion-batch` job creates the ingestions page by page
 * (src/jobs/ingestion/batch-expand.ts), each page one transaction that also moves the batch's
 * cursor, so a crash resumes where it stopped.
 */

type Deps = Pick<IngestionDeps, 'db' | 'queue' | 'clock' | 'log'>

/** The documents of `filter` that `actor` may ingest (the document rule's `trigger`), as SQL over alias `d`. */
export function batchWhere (actor: { id: string, can: (p: Permission) => boolean }, filter: BatchFilterInput): { sql: string, params: string[] } {
  const rule = ruleSql(actor, 'trigger')
  const where = ["d.status <> 'uploading'", rule.sql]
  const params = [...rule.params]
  if (filter.indexState !== undefined) { where.push('d.index_state = ?'); params.push(filter.indexState) }
  if (filter.pipeline !== undefined) { where.push('d.index_pipeline = ?'); params.push(filter.pipeline) }
  if (filter.pipelineVersionNot !== undefined) { where.push('(d.index_pipeline_version IS NULL OR d.index_pipeline_version <> ?)'); params.push(filter.pipelineVersionNot) }
  if (filter.tag !== undefined) { where.push('EXISTS (SELECT 1 FROM document_tags t WHERE t.document_id = d.id AND t.tag = ?)'); params.push(normalizeTag(filter.tag)) }
  if (filter.ownerId !== undefined) { where.push('d.owner_id = ?'); params.push(filter.ownerId) }
  return { sql: where.join(' AND '), params }
}

export interface BatchInput { filter: BatchFilterInput, pipeline: string | undefined, options: Record<string, unknown> }

/** 202 `{batchId, matched}`: counted and recorded here, expanded by the worker. */
export async function createBatch (deps: Deps, ctx: ActorContext, input: BatchInput): Promise<{ batchId: string, matched: number }> {
  if (!ctx.can('ingestions:manage')) throw forbidden('A bulk re-run by filter requires the ingestions:manage permission')
  checkOptions(input.options)
  const where = batchWhere(actorOf(ctx), input.filter)
  const [rows] = await deps.db.$client.query(`SELECT COUNT(*) AS n FROM documents d WHERE ${where.sql}`, where.params) as unknown as [Array<{ n: number | string }>]
  const matched = Number(rows[0]?.n ?? 0)
  const id = newId()
  const now = deps.clock()
  await deps.db.insert(ingestionBatches).values({
    id,
    requestedBy: ctx.actorId,
    filter: input.filter as Record<string, unknown>,
    pipeline: input.pipeline ?? '',
    options: input.options,
    status: matched === 0 ? 'done' : 'expanding',
    matched,
    createdAt: now,
    updatedAt: now,
    finishedAt: matched === 0 ? now : null,
  })
  if (matched > 0) {
    try {
      await deps.queue.enqueue('ingestion-batch', { batchId: id }, { timeoutMs: 3000 })
    } catch (err) {
      // The batch stays `expanding`; the recovery sweep queues its expansion again.
      deps.log.error({ err, batchId: id }, 'could not queue the expansion of an ingestion batch')
    }
  }
  await recordAudit(deps, ctx, { action: 'ingestion.batch', subject: `ingestion-batch:${id}`, payload: { filter: input.filter, pipeline: input.pipeline ?? null, matched } })
  return { batchId: id, matched }
}

/** The requester's permissions now (a batch is expanded with them, not with those of when it was asked). */
export async function requesterOf (deps: Pick<Deps, 'db'>, userId: string): Promise<{ id: string, can: (p: Permission) => boolean } | null> {
  const u = await loadUserState(deps.db, userId)
  if (u === null || u.disabled) return null
  const perms = new Set(effectivePermissions(u.role, u.grants, u.revokes))
  return { id: userId, can: (p) => perms.has(p) }
}

/** GET /ingestion-batches/:id: the requester's own, or any with ingestions:manage (404 otherwise). */
export async function getBatch (deps: Pick<Deps, 'db'>, ctx: Pick<ActorContext, 'actorId' | 'can'>, id: string): Promise<BatchDto> {
  if (!isId(id)) throw notFound('Ingestion batch')
  const [b] = await deps.db.select().from(ingestionBatches).where(eq(ingestionBatches.id, id))
  if (b === undefined || (b.requestedBy !== ctx.actorId && !ctx.can('ingestions:manage'))) throw notFound('Ingestion batch')
  const counts = await deps.db.select({ status: ingestions.status, n: sql<number>`count(*)` }).from(ingestions).where(eq(ingestions.batchId, b.id)).groupBy(ingestions.status)
  const by = Object.fromEntries(counts.map(c => [c.status, Number(c.n)]))
  const n = (s: string): number => by[s] ?? 0
  return {
    id: b.id,
    status: b.status,
    filter: b.filter,
    pipeline: b.pipeline === '' ? null : b.pipeline,
    requestedBy: b.requestedBy,
    matched: b.matched,
    created: Object.values(by).reduce((a, c) => a + c, 0),
    queued: n('queued'),
    running: n('running'),
    succeeded: n('succeeded'),
    failed: n('failed'),
    cancelled: n('cancelled'),
    superseded: n('superseded'),
    createdAt: b.createdAt.toISOString(),
    finishedAt: b.finishedAt?.toISOString() ?? null,
  }
}
