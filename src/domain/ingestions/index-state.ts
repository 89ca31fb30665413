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

// The projection in one round trip (a multi-statement transaction) instead of eight (it followed
// every final status of a bulk re-run: bench/ANALYSIS.md). The document is the one in
// @quire_index_doc (NULL: nothing is updated). Its row is locked first, by a locking read that
// opens no snapshot, so the plain reads after it see every change committed before the lock:
// two refreshes never interleave. Plain indexed reads into session variables, each set again
// before it is read (connections are pooled), and one single-row UPDATE: no derived table, no
// temporary table (a derived table holding `result` made MariaDB 10.11 spill it to an on-disk
// Aria table, and crash on dropping it under load).
const NOT_IGNORED = "(result IS NULL OR JSON_VALUE(result, '$.ignored') IS NULL)"
const OPEN = `status IN (${OPEN_INGESTION_STATUSES.map(s => `'${s}'`).join(', ')})`
const HELD = "IF(@qi_version < d.current_version, 'stale', 'indexed')"
const PROJECTION: Statement[] = [
  ['SELECT current_version INTO @qi_current FROM documents WHERE id = @quire_index_doc FOR UPDATE', []],
  [`SELECT COUNT(*), COALESCE(SUM(operation = 'delete'), 0) INTO @qi_open, @qi_open_delete FROM ingestions WHERE document_id = @quire_index_doc AND ${OPEN}`, []],
  ["SELECT MAX(id) INTO @qi_last_delete FROM ingestions WHERE document_id = @quire_index_doc AND status = 'succeeded' AND operation = 'delete'", []],
  // what the index holds: the highest version upserted since the last delete (ignored answers left out)
  ['SET @qi_holder = NULL, @qi_version = NULL, @qi_result = NULL, @qi_pipeline = NULL, @qi_at = NULL, @qi_verdict = NULL, @qi_verdict_error = NULL', []],
  [`SELECT id INTO @qi_holder FROM ingestions WHERE document_id = @quire_index_doc AND status = 'succeeded' AND operation = 'upsert' AND ${NOT_IGNORED} AND id > COALESCE(@qi_last_delete, '') ORDER BY document_version DESC, id DESC LIMIT 1`, []],
  ['SELECT COALESCE(document_version, 1), result, pipeline, finished_at INTO @qi_version, @qi_result, @qi_pipeline, @qi_at FROM ingestions WHERE id = @qi_holder', []],
  // the newest final verdict
  [`SELECT status, last_error INTO @qi_verdict, @qi_verdict_error FROM ingestions WHERE document_id = @quire_index_doc AND status IN ('succeeded', 'failed') AND ${NOT_IGNORED} ORDER BY id DESC LIMIT 1`, []],
  ['UPDATE documents d SET ' +
    "d.index_state = CASE WHEN @qi_open_delete > 0 THEN 'removing' WHEN @qi_open > 0 THEN 'pending' " +
    `WHEN @qi_verdict IS NULL THEN IF(@qi_holder IS NULL, 'none', ${HELD}) WHEN @qi_verdict = 'failed' THEN 'failed' WHEN @qi_holder IS NULL THEN 'none' ELSE ${HELD} END, ` +
    'd.index_version = @qi_version, ' +
    // scalars only, as the API shows them: chunks an integer in range, pipelineVersion a non-empty string (cut to 100)
    "d.index_chunks = CASE WHEN JSON_TYPE(JSON_EXTRACT(@qi_result, '$.chunks')) = 'INTEGER' AND JSON_VALUE(@qi_result, '$.chunks') BETWEEN 0 AND 2147483647 THEN JSON_VALUE(@qi_result, '$.chunks') END, " +
    'd.index_pipeline = @qi_pipeline, ' +
    "d.index_pipeline_version = CASE WHEN JSON_TYPE(JSON_EXTRACT(@qi_result, '$.pipelineVersion')) = 'STRING' AND JSON_VALUE(@qi_result, '$.pipelineVersion') <> '' THEN LEFT(JSON_VALUE(@qi_result, '$.pipelineVersion'), 100) END, " +
    'd.indexed_at = @qi_at, ' +
    "d.index_error = IF(@qi_open = 0 AND @qi_verdict = 'failed', @qi_verdict_error, NULL) " +
    'WHERE d.id = @quire_index_doc', []],
]

/**
 * The statements that compute the projection of the document `documentOf` names, to be sent in
 * the transaction of the change that moves it: `documentOf` sets @quire_index_doc (e.g. from the
 * ingestion a guarded UPDATE changed; NULL leaves every document as it is).
 */
export function indexRefreshStatements (documentOf: Statement): Statement[] {
  return [documentOf, ...PROJECTION]
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
