import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sqlAtomic, sqlAtomicGrouped, sqlBatch, type Db, type DbOrTx, type SqlValue, type Statement } from '../db.js'
import { auditEvents, documents, ingestionEvents, ingestions } from '../../drizzle/schema/index.js'
import { newId, isId } from '../lib/ids.js'
import { AppError, badRequest, conflict, forbidden, notFound, unavailable } from '../lib/errors.js'
import type { Principal } from './auth-state.js'
import { DOCUMENT_COLUMNS, isReadable, loadDocumentFor, readableCondition, toDocumentRow, type DocumentRow, type RawDocumentRow } from './document-access.js'
import { eventsChannel, publishStatus } from './ingestion-events.js'
import { JOB_RETENTION } from '../jobs/types.js'
import { AUDIT_COLUMNS, auditValues, type AuditEntry } from './audit.js'

export const INGESTION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type IngestionStatus = typeof INGESTION_STATUSES[number]
export type IngestionRow = typeof ingestions.$inferSelect
type Actor = Pick<Principal, 'id' | 'can'>

export const DISPATCH_JOB = 'ingestion-dispatch'
export const CALLBACK_TIMEOUT_JOB = 'ingestion-callback-timeout'
/** BullMQ job ids: the dispatch job IS the ingestion id (dedupes double enqueues); its callback timer next to it. */
export const dispatchJobId = (id: string): string => id
export const callbackTimeoutJobId = (id: string): string => `${id}.cb`
/** Enqueueing must not hang a request when Redis is down (BullMQ waits for a connection forever). */
const ENQUEUE_TIMEOUT_MS = 3000

export interface IngestionEventDto { at: string, type: string, message: string }
export interface IngestionDto {
  id: string
  documentId: string
  status: string
  pipeline: string
  options: Record<string, unknown>
  attempts: number
  lastError: string | null
  result: unknown
  requestedBy: string
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  events: IngestionEventDto[]
}

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

export function toDto (row: IngestionRow, events: IngestionEventDto[]): IngestionDto {
  return {
    id: row.id,
    documentId: row.documentId,
    status: row.status,
    pipeline: row.pipeline,
    options: row.options ?? {},
    attempts: row.attempts,
    lastError: row.lastError ?? null,
    result: row.result ?? null,
    requestedBy: row.requestedBy,
    createdAt: row.createdAt.toISOString(),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    events,
  }
}

export async function eventsOf (db: DbOrTx, ids: string[]): Promise<Map<string, IngestionEventDto[]>> {
  const out = new Map<string, IngestionEventDto[]>(ids.map(id => [id, []]))
  if (ids.length === 0) return out
  const rows = await db.select().from(ingestionEvents).where(inArray(ingestionEvents.ingestionId, ids)).orderBy(ingestionEvents.id)
  for (const r of rows) out.get(r.ingestionId)?.push({ at: r.at.toISOString(), type: r.type, message: r.message })
  return out
}

export async function dtosOf (db: DbOrTx, rows: IngestionRow[]): Promise<IngestionDto[]> {
  const events = await eventsOf(db, rows.map(r => r.id))
  return rows.map(r => toDto(r, events.get(r.id) ?? []))
}

/** An ingestions row as mysql2 returns it (JSON columns parsed by mysql2, as drizzle gets them). */
interface RawIngestionRow {
  id: string
  document_id: string
  status: string
  pipeline: string
  options: Record<string, unknown>
  attempts: number
  last_error: string | null
  result: unknown
  requested_by: string
  idempotency_key: string | null
  request_id: string | null
  created_at: Date
  updated_at: Date
  started_at: Date | null
  finished_at: Date | null
  enqueued_at: Date | null
}

const INGESTION_COLUMNS = ['id', 'document_id', 'status', 'pipeline', 'options', 'attempts', 'last_error', 'result', 'requested_by',
  'idempotency_key', 'request_id', 'created_at', 'updated_at', 'started_at', 'finished_at', 'enqueued_at']
// Read several times per dispatch job, by callbacks and SSE: plain SQL, like the document load.
const FIND_INGESTION_SQL = `SELECT ${INGESTION_COLUMNS.join(', ')} FROM ingestions WHERE id = ? LIMIT 1`
// The dispatch job's first read: the ingestion and its document in one round trip (rows nested by alias).
const FIND_WITH_DOCUMENT_SQL = `SELECT ${INGESTION_COLUMNS.map(c => `i.${c}`).join(', ')}, ${DOCUMENT_COLUMNS} ` +
  'FROM ingestions i LEFT JOIN documents d ON d.id = i.document_id WHERE i.id = ? LIMIT 1'

export async function findIngestion (db: Db, id: string): Promise<IngestionRow | null> {
  if (!isId(id)) return null
  const [rows] = await db.$client.execute(FIND_INGESTION_SQL, [id]) as unknown as [RawIngestionRow[]]
  return rows[0] === undefined ? null : toIngestionRow(rows[0])
}

function toIngestionRow (r: RawIngestionRow): IngestionRow {
  return {
    id: r.id,
    documentId: r.document_id,
    status: r.status,
    pipeline: r.pipeline,
    options: r.options,
    attempts: r.attempts,
    lastError: r.last_error,
    result: r.result,
    requestedBy: r.requested_by,
    idempotencyKey: r.idempotency_key,
    requestId: r.request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    enqueuedAt: r.enqueued_at,
  }
}

interface NewEvent { type: string, message: string, data?: Record<string, unknown> }

/** One event's values, in the column order of `ingestion_events` (ingestion_id, at, type, message, data). */
const eventValues = (ingestionId: string, at: Date, e: NewEvent): SqlValue[] =>
  [ingestionId, at, e.type, e.message.slice(0, 2000), e.data !== undefined ? JSON.stringify(e.data) : null]

const INSERT_EVENT_SQL = 'INSERT INTO ingestion_events (ingestion_id, at, type, message, data) VALUES (?, ?, ?, ?, ?)'

/**
 * The INSERT of `events` as a statement for `sqlAtomic`, written only when the session variable
 * `@quire_changed` is 1 (set from the preceding UPDATE's row count in the same batch).
 */
function guardedEventsInsert (ingestionId: string, events: NewEvent[], at: Date): Statement {
  const select = 'SELECT ?, ?, ?, ?, ? FROM DUAL WHERE @quire_changed = 1'
  return [`INSERT INTO ingestion_events (ingestion_id, at, type, message, data) ${events.map(() => select).join(' UNION ALL ')}`,
    events.flatMap(e => eventValues(ingestionId, at, e))]
}

/** Appends one event (plain SQL: several per ingestion). */
export async function addEvent (db: Db, ingestionId: string, type: string, message: string, data?: Record<string, unknown>, at = new Date()): Promise<void> {
  await db.$client.execute(INSERT_EVENT_SQL, eventValues(ingestionId, at, { type, message, data }))
}

export interface Transition {
  from: readonly IngestionStatus[]
  to: IngestionStatus
  set?: Partial<Pick<IngestionRow, 'lastError' | 'result' | 'startedAt' | 'finishedAt' | 'enqueuedAt'>> & { attemptsPlusOne?: boolean }
  event: NewEvent
  /** Events recorded just before `event`, in the same transaction (e.g. the attempt that led to it). */
  before?: NewEvent[]
}

/**
 * A guarded status change: `UPDATE ... WHERE status IN (from)`, its event in the same transaction,
 * then a pub/sub message. Returns false (and writes nothing) when the row was not in `from`,
 * which is how a late callback after a cancel, or a second worker, is ignored.
 */
export async function transition (app: FastifyInstance, id: string, t: Transition): Promise<boolean> {
  const now = new Date()
  const { attemptsPlusOne, ...set } = t.set ?? {}
  // Plain SQL (the dispatch job makes two transitions per ingestion): SET what is given, like drizzle's .set()
  const sets = ['status = ?', 'updated_at = ?']
  const params: Array<string | Date | null> = [t.to, now]
  if (set.lastError !== undefined) { sets.push('last_error = ?'); params.push(set.lastError) }
  if (set.result !== undefined) { sets.push('result = ?'); params.push(set.result === null ? null : JSON.stringify(set.result)) }
  if (set.startedAt !== undefined) { sets.push('started_at = ?'); params.push(set.startedAt) }
  if (set.finishedAt !== undefined) { sets.push('finished_at = ?'); params.push(set.finishedAt) }
  if (set.enqueuedAt !== undefined) { sets.push('enqueued_at = ?'); params.push(set.enqueuedAt) }
  if (attemptsPlusOne === true) sets.push('attempts = attempts + 1')
  const query = `UPDATE ingestions SET ${sets.join(', ')} WHERE id = ? AND status IN (${t.from.map(() => '?').join(', ')})`
  // One round trip: the UPDATE, then its events only if it changed the row.
  const [res] = await sqlAtomic(app.db, [
    [query, [...params, id, ...t.from]],
    ['SET @quire_changed = ROW_COUNT()', []],
    guardedEventsInsert(id, [...(t.before ?? []), t.event], now),
  ]) as [{ affectedRows: number }]
  if (res.affectedRows !== 1) return false
  // One connection writes the commands in call order: subscribers get them in this order.
  const at = now.toISOString()
  await Promise.all([
    ...(t.before ?? []).map(async e => await announce(app, { id, status: t.from[0] ?? t.to, type: e.type, message: e.message, at })),
    announce(app, { id, status: t.to, type: t.event.type, message: t.event.message, at }),
  ])
  return true
}

/** Publishes a status message; a Redis outage only delays SSE clients, it never fails the change. */
export async function announce (app: FastifyInstance, msg: { id: string, status: string, type: string, message: string, at: string }): Promise<void> {
  try {
    await publishStatus(app.redis, eventsChannel(app.redisKey), msg)
  } catch (err) {
    app.log.warn({ err, ingestionId: msg.id }, 'could not publish ingestion status')
  }
}

/** Records an event that is not a status change (an attempt, a scheduled retry) and tells SSE clients. */
export async function note (app: FastifyInstance, row: Pick<IngestionRow, 'id'>, status: string, type: string, message: string, data?: Record<string, unknown>): Promise<void> {
  await addEvent(app.db, row.id, type, message, data)
  await announce(app, { id: row.id, status, type, message, at: new Date().toISOString() })
}

async function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('enqueue timed out')), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** Options of every dispatch job: the retry budget and exponential backoff with jitter come from config. */
export function dispatchOptions (app: FastifyInstance) {
  return {
    ...JOB_RETENTION,
    attempts: app.config.INGESTION_MAX_ATTEMPTS,
    backoff: { type: 'exponential', delay: app.config.INGESTION_BACKOFF_MS, jitter: 0.5 },
  }
}

export interface DispatchData { ingestionId: string, requestId: string | null }

/** Adds the dispatch job (id = ingestion id, so a double enqueue is a no-op). */
async function addDispatchJob (app: FastifyInstance, row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> {
  const queue = app.queues.ingestion
  const conn = queue.opts.connection as { status?: string }
  if (conn.status !== undefined && conn.status !== 'ready') throw new Error(`queue connection is ${conn.status}`)
  const data: DispatchData = { ingestionId: row.id, requestId: row.requestId ?? null }
  await withTimeout(queue.add(DISPATCH_JOB, data, { ...dispatchOptions(app), jobId: dispatchJobId(row.id) }), ENQUEUE_TIMEOUT_MS)
}

/** Adds the dispatch job of an existing row and stamps enqueued_at (retries, the recovery sweep). */
export async function enqueueDispatch (app: FastifyInstance, row: Pick<IngestionRow, 'id' | 'requestId'>): Promise<void> {
  await addDispatchJob(app, row)
  await app.db.update(ingestions).set({ enqueuedAt: new Date() }).where(eq(ingestions.id, row.id))
}

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
  requestId: string
}

const isDuplicate = (err: unknown): boolean => {
  const e = err as { code?: string, cause?: { code?: string } }
  return e?.code === 'ER_DUP_ENTRY' || e?.cause?.code === 'ER_DUP_ENTRY'
}

async function byIdempotencyKey (db: Db, userId: string, key: string): Promise<IngestionRow | null> {
  const rows = await db.select().from(ingestions).where(and(eq(ingestions.requestedBy, userId), eq(ingestions.idempotencyKey, key))).limit(1)
  return rows[0] ?? null
}

/** A new queued row (enqueued_at stamped: its job is added right after it is written) and its `queued` event. */
function newQueued (actor: Actor, documentId: string, input: TriggerInput, key: string | null): { row: IngestionRow, event: IngestionEventDto } {
  const now = new Date()
  const row: IngestionRow = {
    id: newId(),
    documentId,
    status: 'queued',
    pipeline: input.pipeline,
    options: input.options,
    attempts: 0,
    lastError: null,
    result: null,
    requestedBy: actor.id,
    idempotencyKey: key,
    requestId: input.requestId.slice(0, 128),
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
const INSERT_INGESTION_SQL = 'INSERT INTO ingestions (id, document_id, status, pipeline, options, attempts, requested_by, idempotency_key, request_id, created_at, updated_at, enqueued_at) ' +
  "VALUES (?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?, ?)"

/**
 * Inserts one queued row (+ its 'queued' event) in one transaction, or returns the row an earlier
 * request with the same key created. `enqueued_at` is stamped here, just before the job is added:
 * if adding it fails the row is deleted again, and if even that fails the recovery sweep (which
 * goes by status, updated_at and the job's state, not by enqueued_at) enqueues it later.
 */
async function insertQueued (db: Db, actor: Actor, documentId: string, input: TriggerInput, key: string | null): Promise<{ row: IngestionRow, created: boolean, event?: IngestionEventDto }> {
  if (key !== null) {
    const existing = await byIdempotencyKey(db, actor.id, key)
    if (existing !== null) return { row: existing, created: false }
  }
  const { row, event } = newQueued(actor, documentId, input, key)
  const now = row.createdAt
  try {
    await sqlAtomic(db, [
      [INSERT_INGESTION_SQL, [row.id, documentId, row.pipeline, JSON.stringify(row.options), actor.id, key, row.requestId, now, now, now]],
      [INSERT_EVENT_SQL, eventValues(row.id, now, event)],
    ])
  } catch (err) {
    // Two requests with the same key raced: the unique index picked the winner.
    if (key !== null && isDuplicate(err)) {
      const existing = await byIdempotencyKey(db, actor.id, key)
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
 * `<key>#<documentId>` (bulk), so a repeated request returns the same ingestions.
 */
export async function triggerIngestions (app: FastifyInstance, actor: Actor, documentIds: string[], input: TriggerInput, bulk: boolean): Promise<IngestionDto[]> {
  checkOptions(input.options)
  for (const id of documentIds) {
    const access = await loadDocumentFor(app.db, actor, id)
    if (access === null) throw notFound(`Document ${id}`)
    if (!access.canWrite) throw forbidden(`Ingesting document ${id} requires write access to it: being its owner, a write share, or the documents:manage permission`)
    if (access.doc.status === 'uploading') throw conflict(`Document ${id} has no content yet; finish its upload first`, 'document_not_ready')
  }
  const results: Array<{ row: IngestionRow, created: boolean, event?: IngestionEventDto }> = []
  const undo = async (): Promise<void> => {
    const created = results.filter(r => r.created).map(r => r.row.id)
    if (created.length > 0) await deleteRows(app, created)
  }
  try {
    for (const id of documentIds) {
      const key = input.idempotencyKey === null ? null : bulk ? `${input.idempotencyKey}#${id}` : input.idempotencyKey
      const r = await insertQueued(app.db, actor, id, input, key)
      if (!r.created && r.row.documentId !== id) throw conflict('This Idempotency-Key was already used for another document; send a new key for each request', 'idempotency_key_reused')
      results.push(r)
    }
  } catch (err) {
    // A database failure is a 500 (logged by the error handler), not a queue outage.
    await undo()
    throw err
  }
  try {
    for (const r of results) if (r.created) await addDispatchJob(app, r.row)
  } catch (err) {
    await undo()
    app.log.error({ err, requestId: input.requestId }, 'could not enqueue ingestion')
    throw unavailable('The job queue is unavailable, retry later')
  }
  // New rows answer as written (queued, one event: the 202 snapshot); replayed ones as they are now.
  const replayed = results.filter(r => !r.created).map(r => r.row.id)
  const fresh = replayed.length === 0 ? [] : await app.db.select().from(ingestions).where(inArray(ingestions.id, replayed))
  const byId = new Map(fresh.map(r => [r.id, r]))
  const events = await eventsOf(app.db, replayed)
  return results.map(r => r.event !== undefined ? toDto(r.row, [r.event]) : toDto(byId.get(r.row.id) ?? r.row, events.get(r.row.id) ?? []))
}

/** What the audit log records of one trigger. */
export const triggerAuditEntry = (item: Pick<IngestionDto, 'id' | 'documentId' | 'pipeline'>): AuditEntry =>
  ({ action: 'ingestion.trigger', subject: `ingestion:${item.id}`, payload: { documentId: item.documentId, pipeline: item.pipeline } })

// The single trigger's access check IS its insert: the row is only selected from a live, ready
// document the actor may write (owner or a `write` share; anyone with documents:manage).
const checkedInsertSql = (manage: boolean): string =>
  'INSERT INTO ingestions (id, document_id, status, pipeline, options, attempts, requested_by, idempotency_key, request_id, created_at, updated_at, enqueued_at) ' +
  "SELECT ?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?, ? FROM documents d WHERE d.id = ? AND d.deleted_at IS NULL AND d.status <> 'uploading'" +
  (manage ? '' : " AND (d.owner_id = ? OR EXISTS (SELECT 1 FROM document_shares s WHERE s.document_id = d.id AND s.user_id = ? AND s.access = 'write'))")
const GUARDED_AUDIT_SQL = `INSERT INTO audit_events (${AUDIT_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL WHERE @quire_changed = 1`

/**
 * POST /documents/:id/ingestions, audit row included. The common case is one round trip to MySQL
 * and one to Redis: a transaction whose INSERT ... SELECT writes the row only if the actor may
 * write the document (so it is the access check), then the `queued` event and the audit row,
 * kept only if the row was written; then the job. Anything else (no row written: unknown,
 * invisible, read-only, trashed or not-ready document, or an Idempotency-Key seen before) takes
 * the general path, which tells 404 from 403 from 409 and replays keyed requests.
 */
export async function triggerOne (app: FastifyInstance, request: FastifyRequest, actor: Actor, documentId: string, input: TriggerInput): Promise<IngestionDto> {
  checkOptions(input.options)
  const general = async (): Promise<IngestionDto> => {
    const item = (await triggerIngestions(app, actor, [documentId], input, false))[0]!
    await app.audit(request, triggerAuditEntry(item))
    return item
  }
  // Without documents:read nothing is visible: the general path answers that 404.
  if (!isId(documentId) || !actor.can('documents:read')) return await general()
  const { row, event } = newQueued(actor, documentId, input, input.idempotencyKey)
  const now = row.createdAt
  const manage = actor.can('documents:manage')
  let written: [{ affectedRows: number }, unknown, unknown, { insertId: number }]
  // Unkeyed triggers share transactions (group commit); a keyed one runs alone, since a replayed
  // key fails its transaction on the unique index and would send a whole group to its rerun.
  const atomic = row.idempotencyKey === null ? sqlAtomicGrouped : sqlAtomic
  try {
    written = await atomic(app.db, [
      // document_id as the general path stores it: the id as given (the collation matches it to d.id)
      [checkedInsertSql(manage), [row.id, documentId, row.pipeline, JSON.stringify(row.options), actor.id, row.idempotencyKey, row.requestId, now, now, now,
        documentId, ...(manage ? [] : [actor.id, actor.id])]],
      ['SET @quire_changed = ROW_COUNT()', []],
      guardedEventsInsert(row.id, [event], now),
      [GUARDED_AUDIT_SQL, auditValues(request, triggerAuditEntry(row), now)],
    ]) as typeof written
  } catch (err) {
    // The key was used before (or just now, by a racing request): the general path replays it.
    if (row.idempotencyKey !== null && isDuplicate(err)) return await general()
    throw err
  }
  if (written[0].affectedRows !== 1) return await general()
  try {
    await addDispatchJob(app, row)
  } catch (err) {
    await deleteRows(app, [row.id], [written[3].insertId])
    app.log.error({ err, requestId: input.requestId }, 'could not enqueue ingestion')
    throw unavailable('The job queue is unavailable, retry later')
  }
  return toDto(row, [event])
}

/**
 * Removes ingestions that never got their job, with their events (and, for a single one, the
 * audit row that announced it). A row no longer queued did get its job after all (the enqueue
 * only timed out here): it stays, and so does everything recorded of it.
 */
async function deleteRows (app: FastifyInstance, ids: string[], auditIds: number[] = []): Promise<void> {
  try {
    await app.db.transaction(async (tx) => {
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
    app.log.error({ err, ingestionIds: ids }, 'could not remove unenqueued ingestions; the recovery sweep will enqueue them')
  }
}

/**
 * An ingestion the actor may see: ingestions:manage sees all; anyone else exactly when its document
 * is there for them (the document rule, trash included: `isReadable`, as `readableCondition` in
 * lists). `canWrite`: may cancel or retry it.
 */
export async function loadIngestionFor (app: FastifyInstance, actor: Actor, id: string): Promise<{ row: IngestionRow, canWrite: boolean } | null> {
  const row = await findIngestion(app.db, id)
  if (row === null) return null
  const manage = actor.can('ingestions:manage')
  const access = await loadDocumentFor(app.db, actor, row.documentId, 'any')
  const visible = access !== null && isReadable(access, access.doc.deletedAt !== null)
  if (!visible && !manage) return null
  // Without ingestions:manage, only your own ingestions ("cancel/retry anyone's" is manage's),
  // and only while you may still trigger on the document.
  return { row, canWrite: manage || (row.requestedBy === actor.id && actor.can('ingestions:trigger') && visible && access.canWrite) }
}

async function loadForWrite (app: FastifyInstance, actor: Actor, id: string): Promise<IngestionRow> {
  const found = await loadIngestionFor(app, actor, id)
  if (found === null) throw notFound('Ingestion')
  if (!found.canWrite) throw forbidden('Cancelling or retrying this ingestion requires the ingestions:manage permission, or having requested it yourself (with ingestions:trigger and write access to its document)')
  return found.row
}

export async function cancelIngestion (app: FastifyInstance, actor: Actor, id: string): Promise<IngestionDto> {
  const row = await loadForWrite(app, actor, id)
  const ok = await transition(app, row.id, {
    from: ['queued', 'running'],
    to: 'cancelled',
    set: { finishedAt: new Date() },
    event: { type: 'cancelled', message: 'cancelled by a user', data: { by: actor.id } },
  })
  if (!ok) {
    const now = await findIngestion(app.db, row.id)
    throw conflict(`Only queued or running ingestions can be cancelled (status ${now?.status ?? row.status})`, 'invalid_transition')
  }
  // A waiting or delayed job goes; an active one finds the row cancelled and stops retrying.
  await removeJobs(app, row.id)
  return (await dtosOf(app.db, [(await findIngestion(app.db, row.id)) ?? row]))[0]!
}

/** Best effort: removes the waiting/delayed dispatch job and callback timer (locked active jobs stay). */
export async function removeJobs (app: FastifyInstance, id: string): Promise<void> {
  const q = app.queues.ingestion
  await Promise.allSettled([withTimeout(q.remove(dispatchJobId(id)), ENQUEUE_TIMEOUT_MS), withTimeout(q.remove(callbackTimeoutJobId(id)), ENQUEUE_TIMEOUT_MS)])
}

export async function retryIngestion (app: FastifyInstance, actor: Actor, id: string, requestId: string): Promise<IngestionDto> {
  const row = await loadForWrite(app, actor, id)
  if (row.status !== 'failed' && row.status !== 'cancelled') throw conflict(`Only failed or cancelled ingestions can be retried (status ${row.status})`, 'invalid_transition')
  const queue = app.queues.ingestion
  try {
    // The previous cycle's job keeps the id until removed; an active one (cancelled mid-request) cannot be.
    const job = await withTimeout(queue.getJob(dispatchJobId(row.id)), ENQUEUE_TIMEOUT_MS)
    if (job !== undefined && await job.isActive()) throw conflict('The previous attempt is still in flight; retry in a moment', 'ingestion_busy')
    if (job !== undefined) await job.remove()
    await queue.remove(callbackTimeoutJobId(row.id))
  } catch (err) {
    if (err instanceof AppError) throw err
    throw unavailable('The job queue is unavailable, retry later')
  }
  const from = row.status
  const ok = await transition(app, row.id, {
    from: [from],
    to: 'queued',
    set: { lastError: null, result: null, finishedAt: null, startedAt: null },
    event: { type: 'retried', message: `retry requested (was ${from})`, data: { by: actor.id } },
  })
  if (!ok) throw conflict('The ingestion changed meanwhile; reload it', 'invalid_transition')
  await app.db.update(ingestions).set({ requestId: requestId.slice(0, 128) }).where(eq(ingestions.id, row.id))
  // The 202 answers the ingestion as queued, read before a worker can pick it up.
  const queued = (await dtosOf(app.db, [(await findIngestion(app.db, row.id)) ?? row]))[0]!
  try {
    await enqueueDispatch(app, { id: row.id, requestId })
  } catch (err) {
    app.log.error({ err, ingestionId: row.id }, 'could not enqueue ingestion retry')
    await transition(app, row.id, { from: ['queued'], to: from, set: { lastError: row.lastError, result: row.result, startedAt: row.startedAt, finishedAt: row.finishedAt }, event: { type: 'retry_aborted', message: 'the job queue was unavailable; nothing was retried' } })
    throw unavailable('The job queue is unavailable, retry later')
  }
  return queued
}

/** Opaque cursor: the last id of the page. */
export const encodeCursor = (id: string): string => Buffer.from(JSON.stringify({ i: id })).toString('base64url')
export function decodeCursor (cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { i?: unknown }
    if (typeof v.i === 'string' && isId(v.i)) return v.i
  } catch { /* fall through */ }
  throw badRequest('The cursor is not one this API gave out; pass nextCursor from the previous page unchanged', 'invalid_cursor')
}

export interface ListQuery { documentId?: string, status?: string, limit: number, cursor?: string }

/** Ingestions of documents that are there for the actor (the rule of loadIngestionFor, in SQL), newest first. */
export async function listIngestions (db: Db, actor: Actor, q: ListQuery): Promise<{ items: IngestionDto[], nextCursor: string | null }> {
  const where: Array<SQL | undefined> = []
  if (q.cursor !== undefined) where.push(lt(ingestions.id, decodeCursor(q.cursor)))
  if (q.documentId !== undefined) where.push(eq(ingestions.documentId, q.documentId))
  if (q.status !== undefined) where.push(eq(ingestions.status, q.status))
  let rows: IngestionRow[]
  if (actor.can('ingestions:manage')) {
    rows = await db.select().from(ingestions).where(and(...where)).orderBy(desc(ingestions.id)).limit(q.limit + 1)
  } else {
    where.push(readableCondition(actor))
    const joined = await db.select({ i: ingestions }).from(ingestions).innerJoin(documents, eq(documents.id, ingestions.documentId))
      .where(and(...where)).orderBy(desc(ingestions.id)).limit(q.limit + 1)
    rows = joined.map(r => r.i)
  }
  const more = rows.length > q.limit
  const page = rows.slice(0, q.limit)
  return { items: await dtosOf(db, page), nextCursor: more ? encodeCursor(page[page.length - 1]!.id) : null }
}

export interface CallbackBody { status: 'succeeded' | 'failed', result?: unknown, error?: string }

/**
 * Applies a verified backend callback. Legal: queued/running -> succeeded/failed. The same final
 * status again is a no-op (200, changed: false); a callback for a cancelled ingestion is ignored
 * the same way; succeeded <-> failed is a 409.
 */
export async function applyCallback (app: FastifyInstance, id: string, body: CallbackBody): Promise<{ id: string, status: string, changed: boolean }> {
  for (let i = 0; i < 2; i++) {
    const row = await findIngestion(app.db, id)
    if (row === null) throw notFound('Ingestion')
    if (row.status === body.status || row.status === 'cancelled') return { id, status: row.status, changed: false }
    if (row.status !== 'queued' && row.status !== 'running') {
      throw conflict(`Ingestion is already ${row.status}; a callback cannot make it ${body.status}`, 'invalid_transition')
    }
    const ok = body.status === 'succeeded'
      ? await transition(app, id, { from: ['queued', 'running'], to: 'succeeded', set: { result: body.result ?? null, lastError: null, finishedAt: new Date() }, event: { type: 'succeeded', message: 'callback: succeeded' } })
      : await transition(app, id, { from: ['queued', 'running'], to: 'failed', set: { lastError: (body.error ?? 'the backend reported a failure').slice(0, 4000), result: body.result ?? null, finishedAt: new Date() }, event: { type: 'failed', message: `callback: failed: ${body.error ?? 'no reason given'}` } })
    if (ok) {
      await Promise.allSettled([withTimeout(app.queues.ingestion.remove(callbackTimeoutJobId(id)), ENQUEUE_TIMEOUT_MS)])
      return { id, status: body.status, changed: true }
    }
    // The row moved under us (a cancel, a worker): decide again on its new status.
  }
  const row = await findIngestion(app.db, id)
  return { id, status: row?.status ?? body.status, changed: false }
}

// Starts an attempt: queued|running -> running, attempts + 1, started_at kept from the first one,
// only while the document is live.
const OPEN_ATTEMPT_SQL = "UPDATE ingestions SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, ?), updated_at = ? " +
  "WHERE id = ? AND status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM documents d WHERE d.id = ingestions.document_id AND d.deleted_at IS NULL)"

/**
 * The dispatch job's opening, in one round trip: the ingestion and its document as they were,
 * and the attempt begun (running, attempts + 1) if the row was queued or running and its
 * document is live. `started` is null when nothing was begun: the row is final, gone or its
 * document deleted (all visible in `row`/`doc`), or it changed between the two statements (a
 * cancel, a delete of the document: read once more, so `row`/`doc` show it).
 */
export async function openAttempt (app: FastifyInstance, id: string, retried = false): Promise<{ row: IngestionRow, doc: DocumentRow | null, started: IngestionRow | null } | null> {
  if (!isId(id)) return null
  const now = new Date()
  const [rows, res] = await sqlBatch(app.db, [[FIND_WITH_DOCUMENT_SQL, [id]], [OPEN_ATTEMPT_SQL, [now, now, id]]], { nestTables: true }) as
    [Array<{ i: RawIngestionRow, d: RawDocumentRow }>, { affectedRows: number }]
  const r = rows[0]
  if (r === undefined) return null
  const row = toIngestionRow(r.i)
  const doc = r.d.id === null ? null : toDocumentRow(r.d)
  const dispatchable = (row.status === 'queued' || row.status === 'running') && doc !== null && doc.deletedAt === null
  // Read as startable but not started: the row or its document changed between the two
  // statements (a cancel, a delete). Once more, so the caller sees what stopped it.
  if (res.affectedRows !== 1 && dispatchable && !retried) return await openAttempt(app, id, true)
  if (res.affectedRows !== 1 || (row.status !== 'queued' && row.status !== 'running')) return { row, doc, started: null }
  if (row.status === 'queued') await announce(app, { id, status: 'running', type: 'running', message: 'dispatching to the ingestion backend', at: now.toISOString() })
  return { row, doc, started: { ...row, status: 'running', attempts: row.attempts + 1, startedAt: row.startedAt ?? now, updatedAt: now } }
}

/** Remembers the last transient error while a retry waits (status stays running). */
export async function setLastError (db: Db, id: string, message: string): Promise<void> {
  await db.update(ingestions).set({ lastError: message.slice(0, 4000), updatedAt: new Date() }).where(and(eq(ingestions.id, id), eq(ingestions.status, 'running')))
}

/** (Re)arms the timer that fails a 202-accepted ingestion whose callback never comes. */
export async function armCallbackTimeout (app: FastifyInstance, id: string, delay: number): Promise<void> {
  const q = app.queues.ingestion
  await q.remove(callbackTimeoutJobId(id))
  await q.add(CALLBACK_TIMEOUT_JOB, { ingestionId: id }, { ...JOB_RETENTION, jobId: callbackTimeoutJobId(id), delay: Math.max(0, delay), attempts: 5, backoff: { type: 'exponential', delay: 1000 } })
}

const LIVE_STATES = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children'])

/**
 * The recovery sweep. Rows untouched for `graceMs`:
 * - queued with no live job (Redis lost it, or the process died between the insert and the
 *   enqueue): enqueued again (the job id is the ingestion id, so this never doubles a job);
 * - running with no live dispatch job: failed if BullMQ gave up on the job (e.g. it stalled too
 *   often); otherwise it is waiting for a callback, so its callback timer is re-armed (or it
 *   fails at once when the callback window is over).
 * `opts.ids` limits the sweep to those ingestions (tests share one database between files).
 */
export async function recoverIngestions (app: FastifyInstance, graceMs: number, opts: { ids?: readonly string[] } = {}): Promise<{ requeued: number, failed: number, rearmed: number }> {
  const out = { requeued: 0, failed: 0, rearmed: 0 }
  if (opts.ids?.length === 0) return out
  const cutoff = new Date(Date.now() - graceMs)
  const rows = await app.db.select().from(ingestions)
    .where(and(
      inArray(ingestions.status, ['queued', 'running']),
      lt(ingestions.updatedAt, cutoff),
      opts.ids !== undefined ? inArray(ingestions.id, [...opts.ids]) : undefined
    )).orderBy(ingestions.updatedAt).limit(500)
  const q = app.queues.ingestion
  for (const row of rows) {
    const log = app.log.child({ ingestionId: row.id, requestId: row.requestId })
    const job = await q.getJob(dispatchJobId(row.id))
    const state = job === undefined ? 'missing' : await job.getState()
    if (LIVE_STATES.has(state)) continue
    if (row.status === 'queued') {
      if (job !== undefined) await job.remove().catch(() => undefined)
      await enqueueDispatch(app, row)
      await note(app, row, 'queued', 'recovered', `re-enqueued by the recovery sweep (job was ${state})`)
      log.warn({ state }, 'recovery: re-enqueued a queued ingestion')
      out.requeued++
      continue
    }
    if (state === 'failed') {
      const reason = job?.failedReason ?? 'the dispatch job failed'
      if (await transition(app, row.id, { from: ['running'], to: 'failed', set: { lastError: reason, finishedAt: new Date() }, event: { type: 'failed', message: `recovery: dispatch job failed: ${reason}` } })) out.failed++
      continue
    }
    const timer = await q.getJob(callbackTimeoutJobId(row.id))
    if (timer !== undefined && LIVE_STATES.has(await timer.getState())) continue
    const remaining = row.updatedAt.getTime() + app.config.INGESTION_CALLBACK_TIMEOUT_MS - Date.now()
    if (remaining <= 0) {
      const msg = 'no dispatch job and no callback within the callback timeout'
      if (await transition(app, row.id, { from: ['running'], to: 'failed', set: { lastError: msg, finishedAt: new Date() }, event: { type: 'failed', message: `recovery: ${msg}` } })) out.failed++
    } else {
      await armCallbackTimeout(app, row.id, remaining)
      out.rearmed++
    }
  }
  return out
}
