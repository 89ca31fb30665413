import { and, desc, eq, inArray, lt } from 'drizzle-orm'
import { ingestions, ingestionEvents } from '../../../drizzle/schema/index.js'
import { newId } from '../../lib/ids.js'
import type { IngestionOperation } from '../../constants.js'
import type { IngestionDeps } from './deps.js'
import { addDispatchJob, dispatchJobId, withTimeout } from './jobs.js'
import { announce } from './transitions.js'
import { refreshIndexQuietly } from './index-state.js'
import { getDocumentRow } from '../documents.js'

/**
 * The index follows the document (docs/ingestion.md, "Lifecycle"): a new version re-ingests a
 * document that is in the index, the trash and a purge send a delete, a restore sends the current
 * version again. These ingestions are created here, by the system on behalf of whoever changed
 * the document, with the pipeline and options of the document's last upsert.
 */

type Deps = Pick<IngestionDeps, 'db' | 'redis' | 'key' | 'queue' | 'clock' | 'log' | 'autoReingest'>

/** Who changed the document (an audit context; null actor: a scheduled job, recorded as the owner). */
export interface ChangeContext { actorId: string | null, requestId: string | null }

export interface NewIndexIngestion {
  documentId: string
  operation: IngestionOperation
  version: number
  pipeline: string
  options: Record<string, unknown>
  requestedBy: string
  requestId: string | null
  batchId?: string | null
}

/** What the trash and purge hooks need of the document row (as it was before the change). */
export interface IndexedDocument { id: string, ownerId: string, indexState: string, currentVersion: number }

/** States in which the backend holds (or is about to hold, or may still hold) something of the document. */
export const IN_INDEX = ['pending', 'indexed', 'stale', 'failed'] as const
const inIndex = (state: string): boolean => (IN_INDEX as readonly string[]).includes(state)

/**
 * The rows of a new index ingestion and its `queued` event, and, in the same transaction, every
 * older upsert of the document still queued that it makes pointless (an older version, or any
 * when this is a delete) marked superseded. The job is added after the commit; if Redis refuses
 * it, the row stays queued for the recovery sweep.
 */
export async function createIndexIngestion (deps: Deps, n: NewIndexIngestion): Promise<string> {
  const id = newId()
  const now = deps.clock()
  const superseded = await deps.db.transaction(async (tx) => {
    await tx.insert(ingestions).values({
      id,
      documentId: n.documentId,
      status: 'queued',
      operation: n.operation,
      documentVersion: n.version,
      batchId: n.batchId ?? null,
      pipeline: n.pipeline,
      options: n.options,
      requestedBy: n.requestedBy,
      requestId: n.requestId?.slice(0, 128) ?? null,
      createdAt: now,
      updatedAt: now,
      enqueuedAt: now,
    })
    await tx.insert(ingestionEvents).values({ ingestionId: id, at: now, type: 'queued', message: `queued: ${n.operation} of version ${n.version} for pipeline "${n.pipeline}"`.slice(0, 2000) })
    const older = and(eq(ingestions.documentId, n.documentId), eq(ingestions.status, 'queued'), eq(ingestions.operation, 'upsert'), lt(ingestions.id, id),
      n.operation === 'delete' ? undefined : lt(ingestions.documentVersion, n.version))
    const gone = (await tx.select({ id: ingestions.id }).from(ingestions).where(older).for('update')).map(r => r.id)
    if (gone.length === 0) return gone
    await tx.update(ingestions).set({ status: 'superseded', finishedAt: now, updatedAt: now }).where(and(inArray(ingestions.id, gone), eq(ingestions.status, 'queued')))
    await tx.insert(ingestionEvents).values(gone.map(g => ({ ingestionId: g, at: now, type: 'superseded', message: `superseded by ingestion ${id} (${n.operation} of version ${n.version}); not sent`, data: { by: id } })))
    return gone
  })
  for (const g of superseded) {
    await announce(deps, { id: g, status: 'superseded', type: 'superseded', message: `superseded by ingestion ${id}; not sent`, at: now.toISOString() })
    await Promise.allSettled([withTimeout(deps.queue.remove(dispatchJobId(g)))])
  }
  await refreshIndexQuietly(deps, n.documentId)
  try {
    await addDispatchJob(deps, { id, requestId: n.requestId })
  } catch (err) {
    deps.log.error({ err, ingestionId: id, documentId: n.documentId }, 'could not enqueue an index ingestion; the recovery sweep will')
  }
  return id
}

/** The pipeline and options the document was last upserted with ('default', {} if never). */
async function lastUpsert (deps: Pick<Deps, 'db'>, documentId: string): Promise<{ pipeline: string, options: Record<string, unknown> }> {
  const [r] = await deps.db.select({ pipeline: ingestions.pipeline, options: ingestions.options }).from(ingestions)
    .where(and(eq(ingestions.documentId, documentId), eq(ingestions.operation, 'upsert'))).orderBy(desc(ingestions.id)).limit(1)
  return { pipeline: r?.pipeline ?? 'default', options: r?.options ?? {} }
}

/** A document in the index changed: an upsert of its current version, or `stale` when AUTO_REINGEST is off. */
export async function documentChanged (deps: Deps, ctx: ChangeContext, documentId: string): Promise<string | null> {
  const doc = await getDocumentRow(deps.db, documentId)
  if (doc === null || doc.deletedAt !== null) return null
  if (!deps.autoReingest || !inIndex(doc.indexState)) {
    await refreshIndexQuietly(deps, doc.id)
    return null
  }
  const last = await lastUpsert(deps, doc.id)
  return await createIndexIngestion(deps, { documentId: doc.id, operation: 'upsert', version: doc.currentVersion, ...last, requestedBy: ctx.actorId ?? doc.ownerId, requestId: ctx.requestId })
}

/** Trashed: a delete, if the backend may hold something of it. */
export async function documentTrashed (deps: Deps, ctx: ChangeContext, doc: IndexedDocument): Promise<string | null> {
  if (!inIndex(doc.indexState)) return null
  const last = await lastUpsert(deps, doc.id)
  return await createIndexIngestion(deps, { documentId: doc.id, operation: 'delete', version: doc.currentVersion, ...last, requestedBy: ctx.actorId ?? doc.ownerId, requestId: ctx.requestId })
}

/** Restored: its current version again, if the trash took it out of the index (its newest ingestion is that delete). */
export async function documentRestored (deps: Deps, ctx: ChangeContext, documentId: string): Promise<string | null> {
  const doc = await getDocumentRow(deps.db, documentId)
  if (doc === null || doc.deletedAt !== null) return null
  const [newest] = await deps.db.select({ operation: ingestions.operation, status: ingestions.status }).from(ingestions)
    .where(and(eq(ingestions.documentId, doc.id), inArray(ingestions.status, ['queued', 'running', 'succeeded', 'failed']))).orderBy(desc(ingestions.id)).limit(1)
  if (newest?.operation !== 'delete') return null
  const last = await lastUpsert(deps, doc.id)
  return await createIndexIngestion(deps, { documentId: doc.id, operation: 'upsert', version: doc.currentVersion, ...last, requestedBy: ctx.actorId ?? doc.ownerId, requestId: ctx.requestId })
}

/**
 * Purged (the row is gone by now): a delete, unless the backend holds nothing of it (`none`) or
 * one is already on its way (`removing`). Its dispatch needs no document row.
 */
export async function documentPurged (deps: Deps, ctx: ChangeContext, doc: IndexedDocument): Promise<string | null> {
  return await documentTrashed(deps, ctx, doc)
}
