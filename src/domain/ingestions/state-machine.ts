/**
 * The ingestion state machine, as data: every status, and every status change any code path may
 * make (the worker, a callback, a user's cancel or retry, the recovery sweep). Pure: the guarded
 * SQL that applies a change lives in transitions.ts and checks its edges against this table.
 */
import { INGESTION_STATUSES, type IngestionStatus } from '../../constants.js'
export { INGESTION_STATUSES, type IngestionStatus }

export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled', 'superseded'] as const satisfies readonly IngestionStatus[]
export const isFinal = (status: string): boolean => (FINAL_STATUSES as readonly string[]).includes(status)
export const isIngestionStatus = (s: string): s is IngestionStatus => (INGESTION_STATUSES as readonly string[]).includes(s)

/**
 * Legal edges. running -> running is a new attempt of the same cycle; failed/cancelled -> queued a
 * retry (a new cycle); queued -> failed/cancelled also undoes a retry whose job could not be
 * enqueued (back to where it was). succeeded is final for good, and so is superseded: an upsert
 * of an older version that a newer upsert or a delete of the same document made pointless while it
 * was still queued (never sent).
 */
export const EDGES: Readonly<Record<IngestionStatus, readonly IngestionStatus[]>> = {
  queued: ['running', 'succeeded', 'failed', 'cancelled', 'superseded'],
  running: ['running', 'succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: ['queued'],
  cancelled: ['queued'],
  superseded: [],
}

export function canMove (from: string, to: string): boolean {
  return isIngestionStatus(from) && isIngestionStatus(to) && EDGES[from].includes(to)
}

/** The statuses each action starts from: the `WHERE status IN (...)` of its guarded UPDATE. */
export const ACTIONS = {
  /** the dispatch job begins an attempt */
  start: { from: ['queued', 'running'], to: ['running'] },
  /** the backend's verdict, in the dispatch job's answer or a callback */
  finish: { from: ['queued', 'running'], to: ['succeeded', 'failed'] },
  /** an attempt the worker gave up on (timeout, recovery, attempts exhausted) */
  fail: { from: ['running'], to: ['failed'] },
  cancel: { from: ['queued', 'running'], to: ['cancelled'] },
  retry: { from: ['failed', 'cancelled'], to: ['queued'] },
  /** a newer upsert or a delete of the same document made this upsert pointless (never sent again) */
  supersede: { from: ['queued'], to: ['superseded'] },
} as const satisfies Record<string, { from: readonly IngestionStatus[], to: readonly IngestionStatus[] }>

export type IngestionAction = keyof typeof ACTIONS

export const canRetry = (status: string): boolean => (ACTIONS.retry.from as readonly string[]).includes(status)

/**
 * What a verified backend callback does to an ingestion in `current`: `apply` (queued/running ->
 * the reported status); `noop` when it repeats the current final status or the ingestion was
 * cancelled or superseded (a late callback); `conflict` when it would turn one final verdict into the other.
 */
export function callbackOutcome (current: string, reported: 'succeeded' | 'failed'): 'apply' | 'noop' | 'conflict' {
  if (current === reported || current === 'cancelled' || current === 'superseded') return 'noop'
  if (current === 'queued' || current === 'running') return 'apply'
  return 'conflict'
}
