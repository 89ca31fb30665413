import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { processorOf } from './types.js'
import { bulkJobs } from './enqueue.js'
import { sqlTransaction } from '../db.js'
import { ingestionBatches, ingestions } from '../../drizzle/schema/index.js'
import { newId } from '../lib/ids.js'
import { batchWhere, requesterOf } from '../domain/ingestions/batches.js'
import { EVENT_COLUMNS } from '../db/hot-paths.js'
import type { BatchFilterInput } from '../schemas/ingestions.js'

/** Documents per page: one transaction creates a page's ingestions and moves the cursor past them. */
export const BATCH_PAGE = 500

const COLUMNS = 'id, document_id, status, operation, document_version, batch_id, pipeline, options, attempts, requested_by, created_at, updated_at, enqueued_at'

async function enqueueDispatches (app: FastifyInstance, ids: string[]): Promise<void> {
  if (ids.length === 0) return
  await app.queues.ingestion.addBulk(bulkJobs('ingestion-dispatch', ids.map(id => ({ ingestionId: id, requestId: null })), app.config))
}

/**
 * Expands a bulk re-run into ingestions (src/domain/ingestions/batches.ts), in pages from the
 * batch's cursor. Each page is one transaction (the rows, their events, the documents shown
 * pending, the cursor); its dispatch jobs are added after the commit. A run that starts again
 * (a worker crash, a retry) first re-adds the jobs of the batch's queued rows (same job ids: no
 * doubles), then goes on from the cursor.
 */
export default processorOf({
  name: 'ingestion-batch',
  async process (app, job) {
    const { batchId } = job.data
    const [batch] = await app.db.select().from(ingestionBatches).where(eq(ingestionBatches.id, batchId))
    if (batch === undefined || batch.status !== 'expanding') return { skipped: batch?.status ?? 'missing' }
    const queued = await app.db.select({ id: ingestions.id }).from(ingestions).where(and(eq(ingestions.batchId, batchId), eq(ingestions.status, 'queued')))
    await enqueueDispatches(app, queued.map(r => r.id))
    const actor = await requesterOf(app, batch.requestedBy)
    const finish = async (status: 'done' | 'failed'): Promise<void> => {
      const now = new Date()
      await app.db.update(ingestionBatches).set({ status, updatedAt: now, finishedAt: now }).where(eq(ingestionBatches.id, batchId))
    }
    if (actor === null) {
      app.log.warn({ batchId }, 'the requester of an ingestion batch is gone or disabled; the batch stops')
      await finish('failed')
      return { status: 'failed' }
    }
    const where = batchWhere(actor, batch.filter as BatchFilterInput)
    let cursor = batch.cursor
    let created = 0
    for (;;) {
      const now = new Date()
      const page = await sqlTransaction(app.db, async (conn) => {
        const [docs] = await conn.query(`SELECT d.id, d.current_version, d.index_pipeline FROM documents d WHERE ${where.sql}${cursor !== null ? ' AND d.id > ?' : ''} ORDER BY d.id LIMIT ${BATCH_PAGE}`,
          [...where.params, ...(cursor !== null ? [cursor] : [])]) as unknown as [Array<{ id: string, current_version: number, index_pipeline: string | null }>]
        if (docs.length === 0) return { ids: [], last: cursor }
        const rows = docs.map(d => ({ id: newId(), doc: d, pipeline: batch.pipeline !== '' ? batch.pipeline : (d.index_pipeline ?? 'default') }))
        const options = JSON.stringify(batch.options ?? {})
        await conn.query(`INSERT INTO ingestions (${COLUMNS}) VALUES ?`,
          [rows.map(r => [r.id, r.doc.id, 'queued', 'upsert', r.doc.current_version, batchId, r.pipeline, options, 0, batch.requestedBy, now, now, now])])
        await conn.query(`INSERT INTO ingestion_events (${EVENT_COLUMNS}) VALUES ?`,
          [rows.map(r => [r.id, now, 'queued', `queued by batch ${batchId}: upsert of version ${r.doc.current_version} for pipeline "${r.pipeline}"`.slice(0, 2000), null])])
        await conn.query("UPDATE documents SET index_state = 'pending' WHERE id IN (?)", [docs.map(d => d.id)])
        const last = docs[docs.length - 1]!.id
        // Only from the cursor this run read: a second runner of the same batch rolls back instead of doubling a page.
        const [moved] = await conn.query(`UPDATE ingestion_batches SET \`cursor\` = ?, updated_at = ? WHERE id = ? AND status = 'expanding' AND \`cursor\` ${cursor === null ? 'IS NULL' : '= ?'}`,
          [last, now, batchId, ...(cursor !== null ? [cursor] : [])]) as unknown as [{ affectedRows: number }]
        if (moved.affectedRows !== 1) throw new Error('the batch moved on meanwhile (another runner)')
        return { ids: rows.map(r => r.id), last }
      })
      await enqueueDispatches(app, page.ids)
      created += page.ids.length
      cursor = page.last
      if (page.ids.length < BATCH_PAGE) break
    }
    await finish('done')
    return { status: 'done', created }
  },
})
