import { INGESTION_INSERT_COLUMNS } from '../../db/hot-paths.js'
import { isDuplicate } from '../../lib/sql.js'
import { and, eq, inArray } from 'drizzle-orm'
import { sqlAtomic, sqlAtomicGrouped } from '../../db.js'
import { auditEvents, ingestionEvents, ingestions } from '../../../drizzle/schema/index.js'
import { newId, isId } from '../../lib/ids.js'
import { AppError, conflict, forbidden, missingPermission, notFound, unavailable } from '../../lib/errors.js'
import { loadDocumentFor } from '../document-access.js'
import { assertContentAvailable, BLOCKED_STATUSES } from '../document-scan.js'
import { ruleSql } from '../access/document-sql.js'
import { PERMISSIONS } from '../../constants.js'
import { refreshIndexQuietly } from './index-state.js'
import { actorOf, type ActorContext, type IngestionDeps } from './deps.js'
import { addDispatchJob } from './jobs.js'
import { GUARDED_AUDIT_SQL, auditRow, recordAudit, triggerAuditEntry } from './audit.js'
import {
  INSERT_EVENT_SQL, byIdempotencyKey, eventValues, eventsOf, guardedEventsInsert, toDto,
  type IngestionDto, type IngestionEventDto, type IngestionRow,
} from './store.js'

type Deps = Pick<IngestionDeps, 'db' | 'queue' | 'clock' | 'log'>

/** Limits on the free-form `options` object (stored as JSON; MySQL/MariaDB refuse deep nesting). */
export const OPTIONS_MAX_DEPTH = 16
export const OPTIONS_MAX_BYTES = 64 * 1024

const depthOf = (v: unknown, limit: number): number => {
  // Iterative, so a hostile document cannot blow the stack; stops once past the limit.
  let max = 0
  const stack: Array<[unknown, number]> = [[v, 0]]
  while (stack.length > 0) {
    const [node, d] = stack.pop() as [unknown, number]
    if (node === null || typeof node !== 'object') continue
    if (d + 1 > max) max = d + 1
    if (max > limit) return max
    for (const child of Object.values(node)) stack.push([child, d + 1])
  }
  return max
}

/** 400 validation_failed when `options` is nested too deeply or too large to store. */
export function checkOptions (options: Record<string, unknown>): void {
  if (depthOf(options, OPTIONS_MAX_DEPTH) > OPTIONS_MAX_DEPTH) {
    throw new AppError(400, 'validation_failed', `Invalid body: /options may be nested at most ${OPTIONS_MAX_DEPTH} levels deep`, [{ path: '/options', message: `nested more than ${OPTIONS_MAX_DEPTH} levels` }])
  }
  if (Buffer.byteLength(JSON.stringify(options)) > OPTIONS_MAX_BYTES) {
    throw new AppError(400, 'validation_failed', `Invalid body: /options may be at most ${OPTIONS_MAX_BYTES} bytes of JSON`, [{ path: '/options', message: `larger than ${OPTIONS_MAX_BYTES} bytes` }])
  }
}

export interface TriggerInput {
  pipeline: string
  options: Record<string, unknown>
  idempotencyKey: string | null
}

/** A new queued row (enqueued_at stamped: its job is added right after it is written) and its `queued` event. */
function newQueued (now: Date, ctx: ActorContext, documentId: string, input: TriggerInput, key: string | null, version: number | null): { row: IngestionRow, event: IngestionEventDto } {
  const row: IngestionRow = {
    id: newId(),
    documentId,
    status: 'queued',
    operation: 'upsert',
    documentVersion: version,
    batchId: null,
    pipeline: input.pipeline,
    options: input.options,
    attempts: 0,
    lastError: null,
    result: null,
    requestedBy: ctx.actorId,
    idempotencyKey: key,
    requestId: ctx.requestId.slice(0, 128),
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
    enqueuedAt: now,
  }
  const event = { at: now.toISOString(), type: 'queued', message: `queued for pipeline "${row.pipeline}"`.slice(0, 2000) }
  return { row, event }
}

// The trigger's writes, in plain SQL through mysql2 (the hot path of POST /documents/:id/ingestions).
const INSERT_INGESTION_SQL = `INSERT INTO ingestions (${INGESTION_INSERT_COLUMNS}) ` +
  "VALUES (?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"

/**
 * Inserts one queued row (+ its 'queued' event) in one transaction, or returns the row an earlier
 * request with the same key created. `enqueued_at` is stamped here, just before the job is added:
 * if adding it fails the row is deleted again, and if even that fails the recovery sweep (which
 * goes by status, updated_at and the job's state, not by enqueued_at) enqueues it later.
 */
async function insertQueued (deps: Deps, ctx: ActorContext, documentId: string, version: number, input: TriggerInput, key: string | null): Promise<{ row: IngestionRow, created: boolean, event?: IngestionEventDto }> {
  if (key !== null) {
    const existing = await byIdempotencyKey(deps.db, ctx.actorId, key)
    if (existing !== null) return { row: existing, created: false }
  }
  const { row, event } = newQueued(deps.clock(), ctx, documentId, input, key, version)
  const now = row.createdAt
  try {
    await sqlAtomic(deps.db, [
      [INSERT_INGESTION_SQL, [row.id, documentId, row.pipeline, JSON.stringify(row.options), ctx.actorId, key, row.requestId, now, now, now, version]],
      [INSERT_EVENT_SQL, eventValues(row.id, now, event)],
    ])
  } catch (err) {
    // Two requests with the same key raced: the unique index picked the winner.
    if (key !== null && isDuplicate(err)) {
      const existing = await byIdempotencyKey(deps.db, ctx.actorId, key)
      if (existing !== null) return { row: existing, created: false }
    }
    throw err
  }
  return { row, created: true, event }
}

/**
 * Checks every document first (404 if one is invisible, 403 if visible but not writable: all or
 * nothing), writes the rows, then enqueues. If Redis refuses the jobs, the rows this request
 * created are deleted again and the caller gets a 503; if even that fails, the recovery sweep
 * enqueues them later. With an Idempotency-Key, each document's row is keyed `<key>` (single) or
 * `<key>#<documentId>` (bulk), so a repeated request returns the same ingestions. No audit row:
 * the callers record theirs.
 */
async function triggerMany (deps: Deps, ctx: ActorContext, documentIds: string[], input: TriggerInput, bulk: boolean): Promise<IngestionDto[]> {
  checkOptions(input.options)
  const versions = new Map<string, number>()
  for (const id of documentIds) {
    const access = await loadDocumentFor(deps.db, actorOf(ctx), id)
    if (access === null) throw notFound(`Document ${id}`)
    if (!access.canWrite) throw forbidden(`Ingesting document ${id} requires write access to it: being its owner, a write share, or the documents:manage permission`)
    if (access.doc.status === 'uploading') throw conflict(`Document ${id} has no content yet; finish its upload first`, 'document_not_ready')
    assertContentAvailable(access.doc)
    versions.set(id, access.doc.currentVersion)
  }
  const results: Array<{ row: IngestionRow, created: boolean, event?: IngestionEventDto }> = []
  const undo = async (): Promise<void> => {
    const created = results.filter(r => r.created).map(r => r.row.id)
    if (created.length > 0) await deleteRows(deps, created)
  }
  try {
    for (const id of documentIds) {
      const key = input.idempotencyKey === null ? null : bulk ? `${input.idempotencyKey}#${id}` : input.idempotencyKey
      const r = await insertQueued(deps, ctx, id, versions.get(id) ?? 1, input, key)
      if (!r.created && r.row.documentId !== id) throw conflict('This Idempotency-Key was already used for another document; send a new key for each request', 'idempotency_key_reused')
      results.push(r)
    }
  } catch (err) {
    // A database failure is a 500 (logged by the error handler), not a queue outage.
    await undo()
    throw err
  }
  try {
    for (const r of results) if (r.created) await addDispatchJob(deps, r.row)
  } catch (err) {
    await undo()
    deps.log.error({ err, requestId: ctx.requestId }, 'could not enqueue ingestion')
    throw unavailable('The job queue is unavailable, retry later')
  }
  for (const r of results) if (r.created) await refreshIndexQuietly(deps, r.row.documentId)
  // New rows answer as written (queued, one event: the 202 snapshot); replayed ones as they are now.
  const replayed = results.filter(r => !r.created).map(r => r.row.id)
  const fresh = replayed.length === 0 ? [] : await deps.db.select().from(ingestions).where(inArray(ingestions.id, replayed))
  const byId = new Map(fresh.map(r => [r.id, r]))
  const events = await eventsOf(deps.db, replayed)
  return results.map(r => r.event !== undefined ? toDto(r.row, [r.event]) : toDto(byId.get(r.row.id) ?? r.row, events.get(r.row.id) ?? []))
}

/** POST /ingestions: several documents, all or nothing, with one audit row naming them all. */
export async function triggerIngestions (deps: Deps, ctx: ActorContext, documentIds: string[], input: TriggerInput): Promise<IngestionDto[]> {
  // The route lets ingestions:trigger or ingestions:manage in (the filter form needs the latter); this form needs the former.
  if (!ctx.can('ingestions:trigger')) throw missingPermission('ingestions:trigger')
  const items = await triggerMany(deps, ctx, documentIds, input, true)
  await recordAudit(deps, ctx, { action: 'ingestion.trigger', subject: null, payload: { bulk: true, ingestionIds: items.map(i => i.id), documentIds } })
  return items
}

/**
 * The single trigger's access check IS its insert: the row is only selected from a document whose
 * content may be ingested (not uploading, scanning or infected) that the actor may `trigger` (the document rule, src/domain/access/, rendered for this actor), and it
 * records the document's current version.
 */
export function checkedInsert (ctx: Pick<ActorContext, 'actorId' | 'can'>): { sql: string, params: string[] } {
  // The rendering depends on the actor's permissions only (its parameters are all the actor's id):
  // rendered once per permission set, not per request (this is the hot path).
  const key = PERMISSIONS.map(p => ctx.can(p) ? '1' : '0').join('')
  let cached = renderings.get(key)
  if (cached === undefined) {
    const rule = ruleSql({ id: '\u0000', can: ctx.can }, 'trigger')
    cached = {
      sql: `INSERT INTO ingestions (${INGESTION_INSERT_COLUMNS}) ` +
        `SELECT ?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?, ?, d.current_version FROM documents d WHERE d.id = ? AND d.status NOT IN (${BLOCKED_STATUSES.map(s => `'${s}'`).join(', ')}) AND ${rule.sql}`,
      params: rule.params.length,
    }
    renderings.set(key, cached)
  }
  return { sql: cached.sql, params: new Array<string>(cached.params).fill(ctx.actorId) }
}
const renderings = new Map<string, { sql: string, params: number }>()

// The document shows the new upsert as pending, in the same transaction (only if the row was written).
const PENDING_SQL = "UPDATE documents SET index_state = 'pending' WHERE id = ? AND @quire_changed = 1"

/**
 * POST /documents/:id/ingestions, audit row included. The common case is one round trip to MySQL
 * and one to Redis: a transaction whose INSERT ... SELECT writes the row only if the actor may
 * write the document (so it is the access check), then the `queued` event and the audit row,
 * kept only if the row was written; then the job. Anything else (no row written: unknown,
 * invisible, read-only, trashed or not-ready document, or an Idempotency-Key seen before) takes
 * the general path, which tells 404 from 403 from 409 and replays keyed requests.
 */
export async function triggerOne (deps: Deps, ctx: ActorContext, documentId: string, input: TriggerInput): Promise<IngestionDto> {
  checkOptions(input.options)
  const general = async (): Promise<IngestionDto> => {
    const item = (await triggerMany(deps, ctx, [documentId], input, false))[0]!
    await recordAudit(deps, ctx, triggerAuditEntry(item))
    return item
  }
  // Without documents:read nothing is visible: the general path answers that 404.
  if (!isId(documentId) || !ctx.can('documents:read')) return await general()
  const { row, event } = newQueued(deps.clock(), ctx, documentId, input, input.idempotencyKey, null)
  const now = row.createdAt
  const insert = checkedInsert(ctx)
  let written: [{ affectedRows: number }, unknown, unknown, unknown, Array<{ document_version: number | null }>, { insertId: number }]
  // Unkeyed triggers share transactions (group commit); a keyed one runs alone, since a replayed
  // key fails its transaction on the unique index and would send a whole group to its rerun.
  const atomic = row.idempotencyKey === null ? sqlAtomicGrouped : sqlAtomic
  try {
    written = await atomic(deps.db, [
      // document_id as the general path stores it: the id as given (the collation matches it to d.id)
      [insert.sql, [row.id, documentId, row.pipeline, JSON.stringify(row.options), ctx.actorId, row.idempotencyKey, row.requestId, now, now, now, documentId, ...insert.params]],
      ['SET @quire_changed = ROW_COUNT()', []],
      guardedEventsInsert(row.id, [event], now),
      [PENDING_SQL, [documentId]],
      ['SELECT document_version FROM ingestions WHERE id = ? AND @quire_changed = 1', [row.id]],
      [GUARDED_AUDIT_SQL, auditRow(ctx, triggerAuditEntry(row), now)],
    ]) as typeof written
  } catch (err) {
    // The key was used before (or just now, by a racing request): the general path replays it.
    if (row.idempotencyKey !== null && isDuplicate(err)) return await general()
    throw err
  }
  if (written[0].affectedRows !== 1) return await general()
  try {
    await addDispatchJob(deps, row)
  } catch (err) {
    await deleteRows(deps, [row.id], [written[5].insertId])
    await refreshIndexQuietly(deps, documentId)
    deps.log.error({ err, requestId: ctx.requestId }, 'could not enqueue ingestion')
    throw unavailable('The job queue is unavailable, retry later')
  }
  return toDto({ ...row, documentVersion: written[4][0]?.document_version ?? null }, [event])
}

/**
 * Removes ingestions that never got their job, with their events (and, for a single one, the
 * audit row that announced it). A row no longer queued did get its job after all (the enqueue
 * only timed out here): it stays, and so does everything recorded of it.
 */
async function deleteRows (deps: Pick<Deps, 'db' | 'log'>, ids: string[], auditIds: number[] = []): Promise<void> {
  try {
    await deps.db.transaction(async (tx) => {
      const [res] = await tx.delete(ingestions).where(and(inArray(ingestions.id, ids), eq(ingestions.status, 'queued')))
      if (res.affectedRows === 0) return
      const surviving = res.affectedRows === ids.length
        ? new Set<string>()
        : new Set((await tx.select({ id: ingestions.id }).from(ingestions).where(inArray(ingestions.id, ids))).map(r => r.id))
      const gone = ids.filter(id => !surviving.has(id))
      await tx.delete(ingestionEvents).where(inArray(ingestionEvents.ingestionId, gone))
      if (auditIds.length > 0 && gone.length === ids.length) await tx.delete(auditEvents).where(inArray(auditEvents.id, auditIds))
    })
  } catch (err) {
    deps.log.error({ err, ingestionIds: ids }, 'could not remove unenqueued ingestions; the recovery sweep will enqueue them')
  }
}
