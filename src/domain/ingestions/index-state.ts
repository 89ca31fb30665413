import { sqlAtomic, type Db, type Statement } from '../../db.js'
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

// One statement, so that the projection rides in the transaction of the change that moves it (a
// final status: src/domain/ingestions/transitions.ts; a superseded one: the dispatch's opening),
// instead of a transaction of its own (eight round trips) after it. The document is the one in
// @quire_index_doc, set just before (NULL: nothing is updated). An UPDATE reads its subqueries
// with locking reads, so it sees the latest committed ingestions, and writes under the document
// row's lock: two refreshes never interleave. Each SET reads only `p` and columns it does not
// assign (the order of a multi-table UPDATE's assignments is not defined).
// `p`: the holder `h` (the highest version upserted since the last delete, ignored answers left
// out), whether a delete / any ingestion is open, and the newest final verdict `v`.
const NOT_IGNORED = "(i.result IS NULL OR JSON_VALUE(i.result, '$.ignored') IS NULL)"
const HOLDER_SQL = 'SELECT 1 AS found, COALESCE(i.document_version, 1) AS version, i.result, i.pipeline, i.finished_at FROM ingestions i ' +
  `WHERE i.document_id = @quire_index_doc AND i.status = 'succeeded' AND i.operation = 'upsert' AND ${NOT_IGNORED} ` +
  "AND i.id > COALESCE((SELECT MAX(x.id) FROM ingestions x WHERE x.document_id = @quire_index_doc AND x.status = 'succeeded' AND x.operation = 'delete'), '') " +
  'ORDER BY i.document_version DESC, i.id DESC LIMIT 1'
const VERDICT_SQL = `SELECT i.status, i.last_error FROM ingestions i WHERE i.document_id = @quire_index_doc AND i.status IN ('succeeded', 'failed') AND ${NOT_IGNORED} ORDER BY i.id DESC LIMIT 1`
const OPEN_SQL = (operation: string): string =>
  `EXISTS (SELECT 1 FROM ingestions o WHERE o.document_id = @quire_index_doc AND o.status IN (${OPEN_INGESTION_STATUSES.map(s => `'${s}'`).join(', ')})${operation})`
const PROJECTION_SQL = `SELECT h.found, h.version, h.result, h.pipeline, h.finished_at, v.status AS verdict, v.last_error AS verdict_error, ${OPEN_SQL(" AND o.operation = 'delete'")} AS open_delete, ${OPEN_SQL('')} AS open_any ` +
  `FROM (SELECT 1 AS one) base LEFT JOIN (${HOLDER_SQL}) h ON 1 = 1 LEFT JOIN (${VERDICT_SQL}) v ON 1 = 1`
const HELD = "IF(p.version < d.current_version, 'stale', 'indexed')"
const STATE_SQL = "CASE WHEN p.open_delete THEN 'removing' WHEN p.open_any THEN 'pending' " +
  `WHEN p.verdict IS NULL THEN IF(p.found IS NULL, 'none', ${HELD}) WHEN p.verdict = 'failed' THEN 'failed' WHEN p.found IS NULL THEN 'none' ELSE ${HELD} END`
// JSON_VALUE: scalars only (a number or a non-empty string; strings cut to 100 characters, as the API shows them).
const CHUNKS_SQL = "CASE WHEN JSON_TYPE(JSON_EXTRACT(p.result, '$.chunks')) = 'INTEGER' AND JSON_VALUE(p.result, '$.chunks') BETWEEN 0 AND 2147483647 THEN JSON_VALUE(p.result, '$.chunks') END"
const PIPELINE_VERSION_SQL = "CASE WHEN JSON_TYPE(JSON_EXTRACT(p.result, '$.pipelineVersion')) = 'STRING' AND JSON_VALUE(p.result, '$.pipelineVersion') <> '' THEN LEFT(JSON_VALUE(p.result, '$.pipelineVersion'), 100) END"
const REFRESH_SQL = `UPDATE documents d JOIN (${PROJECTION_SQL}) p ON 1 = 1 SET ` +
  `d.index_state = ${STATE_SQL}, d.index_version = p.version, d.index_chunks = ${CHUNKS_SQL}, d.index_pipeline = p.pipeline, ` +
  `d.index_pipeline_version = ${PIPELINE_VERSION_SQL}, d.indexed_at = p.finished_at, ` +
  "d.index_error = IF(NOT p.open_any AND p.verdict = 'failed', p.verdict_error, NULL) WHERE d.id = @quire_index_doc"

/**
 * The statements that compute the projection of the document `documentOf` names, to be sent in
 * the transaction of the change that moves it: `documentOf` sets @quire_index_doc (e.g. from the
 * ingestion a guarded UPDATE changed; NULL leaves every document as it is).
 */
export function indexRefreshStatements (documentOf: Statement): Statement[] {
  return [documentOf, [REFRESH_SQL, []]]
}

/** The projection of one document, in one transaction of its own; its new state (null: no such document). */
export async function refreshIndex (db: Db, documentId: string): Promise<IndexState | null> {
  const results = await sqlAtomic(db, [
    ...indexRefreshStatements(['SET @quire_index_doc = ?', [documentId]]),
    ['SELECT index_state FROM documents WHERE id = ?', [documentId]],
  ])
  const rows = results[results.length - 1] as Array<{ index_state: IndexState }>
  return rows[0]?.index_state ?? null
}

/** refreshIndex that never throws: the projection is computed again on the document's next change. */
export async function refreshIndexQuietly (deps: { db: Db, log: Log }, documentId: string): Promise<void> {
  try {
    await refreshIndex(deps.db, documentId)
  } catch (err) {
    deps.log.warn({ err, documentId }, 'could not refresh the document\'s index state')
  }
}
