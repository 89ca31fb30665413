import { and, desc, eq, gt, inArray, sql } from 'drizzle-orm'
import type { Db } from '../../db.js'
import { documents, ingestions } from '../../../drizzle/schema/index.js'
import { OPEN_INGESTION_STATUSES, type IndexState } from '../../constants.js'
import type { Log } from './deps.js'

/**
 * The document's index fields (documents.index_*) are a projection of its ingestions, computed
 * again after every change that can move them (a final status, a new ingestion, a new version):
 * - `removing` while a delete is open, else `pending` while an upsert is open;
 * - else from the newest final verdict (succeeded or failed; cancelled and superseded ones never
 *   reached the index): `failed`, `none` after a delete, `indexed` / `stale` after an upsert,
 *   stale when the document has a newer version than the one the index holds.
 * What the index holds is the highest version upserted since the last delete: a late success
 * for an older version (or one the backend ignored as older) never moves it back.
 * Computed under the document row's lock, so two refreshes never interleave.
 */

/** A success the backend answered with `result.ignored` (e.g. "older-version") left its index as it was. */
const notIgnored = sql`(${ingestions.result} IS NULL OR JSON_VALUE(${ingestions.result}, '$.ignored') IS NULL)`

interface Holder { version: number, chunks: number | null, pipeline: string, pipelineVersion: string | null, indexedAt: Date | null }

const intOf = (v: unknown): number | null => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2_147_483_647 ? v : null
const strOf = (v: unknown): string | null => typeof v === 'string' && v.length > 0 ? v.slice(0, 100) : null

export async function refreshIndex (db: Db, documentId: string): Promise<IndexState | null> {
  return await db.transaction(async (tx) => {
    const [doc] = await tx.select({ currentVersion: documents.currentVersion }).from(documents).where(eq(documents.id, documentId)).for('update')
    if (doc === undefined) return null
    const mine = eq(ingestions.documentId, documentId)
    const open = await tx.select({ operation: ingestions.operation }).from(ingestions).where(and(mine, inArray(ingestions.status, [...OPEN_INGESTION_STATUSES])))
    const [verdict] = await tx.select({ status: ingestions.status, operation: ingestions.operation, lastError: ingestions.lastError }).from(ingestions)
      .where(and(mine, inArray(ingestions.status, ['succeeded', 'failed']), notIgnored)).orderBy(desc(ingestions.id)).limit(1)
    const [lastDelete] = await tx.select({ id: ingestions.id }).from(ingestions)
      .where(and(mine, eq(ingestions.status, 'succeeded'), eq(ingestions.operation, 'delete'))).orderBy(desc(ingestions.id)).limit(1)
    const [best] = await tx.select().from(ingestions)
      .where(and(mine, eq(ingestions.status, 'succeeded'), eq(ingestions.operation, 'upsert'), notIgnored, lastDelete !== undefined ? gt(ingestions.id, lastDelete.id) : undefined))
      .orderBy(desc(ingestions.documentVersion), desc(ingestions.id)).limit(1)
    let holder: Holder | null = null
    if (best !== undefined) {
      const r = (best.result !== null && typeof best.result === 'object' ? best.result : {}) as Record<string, unknown>
      holder = { version: best.documentVersion ?? 1, chunks: intOf(r.chunks), pipeline: best.pipeline, pipelineVersion: strOf(r.pipelineVersion), indexedAt: best.finishedAt }
    }
    let state: IndexState
    if (open.some(o => o.operation === 'delete')) state = 'removing'
    else if (open.length > 0) state = 'pending'
    else if (verdict === undefined) state = holder === null ? 'none' : 'indexed'
    else if (verdict.status === 'failed') state = 'failed'
    else if (holder === null) state = 'none'
    else state = 'indexed'
    if (state === 'indexed' && holder !== null && holder.version < doc.currentVersion) state = 'stale'
    await tx.update(documents).set({
      indexState: state,
      indexVersion: holder?.version ?? null,
      indexChunks: holder?.chunks ?? null,
      indexPipeline: holder?.pipeline ?? null,
      indexPipelineVersion: holder?.pipelineVersion ?? null,
      indexedAt: holder?.indexedAt ?? null,
      indexError: state === 'failed' ? (verdict?.lastError ?? null) : null,
    }).where(eq(documents.id, documentId))
    return state
  })
}

/** refreshIndex that never throws: the projection is computed again on the document's next change. */
export async function refreshIndexQuietly (deps: { db: Db, log: Log }, documentId: string): Promise<void> {
  try {
    await refreshIndex(deps.db, documentId)
  } catch (err) {
    deps.log.warn({ err, documentId }, 'could not refresh the document\'s index state')
  }
}
