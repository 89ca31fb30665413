import { DelayedError, UnrecoverableError } from 'bullmq'
import { processorOf } from './types.js'
import type { IngestionRow } from '../domain/ingestions/store.js'
import type { Transition } from '../domain/ingestions/transitions.js'
import { armCallbackTimeout, openAttempt, setLastError } from './ingestion/attempt.js'
import { callBackend, type Outcome } from './ingestion/backend.js'
import { payloadFor, VersionGone } from './ingestion/payload.js'

/** How long a dispatch waits before looking again while another ingestion of its document goes first. */
export const GATE_DELAY_MS = 250

/**
 * Sends one ingestion to the backend. 2xx succeeded -> succeeded; 202 -> running until the
 * callback (a timer fails it otherwise); 4xx -> failed, no retry; 5xx/timeout/network -> thrown,
 * so BullMQ retries with exponential backoff and jitter until the attempts run out.
 */
export default processorOf({
  name: 'ingestion-dispatch',
  async process (app, job, token) {
    const { ingestionId, requestId } = job.data
    const log = app.log.child({ ingestionId, requestId, jobId: job.id })
    // The row, its document, and (when its turn has come) the attempt begun.
    const opened = await openAttempt(app, ingestionId)
    if (opened === null) {
      log.warn('ingestion row is gone; dropping its job')
      return { skipped: 'missing' }
    }
    const { row: initial, doc } = opened
    if (opened.kind === 'superseded') {
      log.info({ by: opened.by }, 'superseded by a newer ingestion of the same document; not sent')
      return { skipped: 'superseded' }
    }
    if (opened.kind === 'busy') {
      // Another ingestion of the document goes first: look again shortly (not an attempt).
      await job.moveToDelayed(Date.now() + GATE_DELAY_MS, token)
      throw new DelayedError()
    }
    if (initial.status !== 'queued' && initial.status !== 'running') {
      log.info({ status: initial.status }, 'ingestion is final; nothing to dispatch')
      return { skipped: initial.status }
    }
    if (initial.operation !== 'delete' && (doc === null || doc.deletedAt !== null)) {
      const error = 'the document was deleted before it could be ingested'
      await app.ingestions.transition(ingestionId, { from: ['queued', 'running'], to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error }, documentId: initial.documentId })
      throw new UnrecoverableError(error)
    }
    if (initial.operation !== 'delete' && doc !== null && (doc.status === 'scanning' || doc.status === 'infected')) {
      // Checked again here: a retried ingestion, or a trigger that raced with a new object.
      const error = doc.status === 'infected'
        ? `the document was found infected (${doc.error ?? 'malware'}); it is never ingested`
        : 'the document is being scanned for malware; trigger the ingestion again once it is ready'
      await app.ingestions.transition(ingestionId, { from: ['queued', 'running'], to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error }, documentId: initial.documentId })
      throw new UnrecoverableError(error)
    }
    if (opened.kind !== 'started') return { skipped: 'cancelled' }
    const row = opened.started
    const max = job.opts.attempts ?? 1
    const tryNo = job.attemptsMade + 1
    let payload: string | null = null
    let outcome: Outcome
    let gone: string | null = null
    try {
      payload = await payloadFor(app, row, doc)
    } catch (err) {
      if (err instanceof VersionGone) gone = err.message
      else log.warn({ err }, 'could not build the download URL')
    }
    if (gone !== null) outcome = { kind: 'permanent', error: gone, line: `not sent: ${gone}` }
    else if (payload === null) outcome = { kind: 'transient', error: 'could not create a download URL (storage unavailable)', line: 'not sent: the storage could not sign a download URL' }
    else outcome = await callBackend(app, row, payload)
    const head = `attempt ${row.attempts} (${tryNo}/${max}): ${outcome.line}`
    log[outcome.kind === 'transient' || outcome.kind === 'permanent' ? 'warn' : 'info']({ outcome: outcome.kind, attempt: row.attempts }, head)
    const attempt = { type: 'attempt', message: head }
    // The attempt's event on its own, with the status the row has now (a cancel may have come meanwhile).
    const noteAttempt = async (): Promise<IngestionRow | null> => {
      const current = await app.ingestions.find(row.id)
      await app.ingestions.note(row, current?.status ?? 'running', attempt.type, attempt.message)
      return current
    }
    // A final outcome writes the attempt, the new status and the document's index fields in one transaction.
    const finish = async (t: Omit<Transition, 'from' | 'before' | 'documentId'>): Promise<boolean> => {
      if (await app.ingestions.transition(row.id, { ...t, from: ['running'], before: [attempt], documentId: row.documentId })) return true
      await noteAttempt()
      return false
    }

    switch (outcome.kind) {
      case 'succeeded':
        if (!await finish({ to: 'succeeded', set: { result: outcome.result, lastError: null, finishedAt: new Date() }, event: { type: 'succeeded', message: 'the backend finished the ingestion' } })) {
          log.info('result ignored: the ingestion changed meanwhile (cancelled?)')
        }
        return { status: 'succeeded' }
      case 'accepted': {
        const now = await noteAttempt()
        if (now?.status === 'running') await armCallbackTimeout(app, row.id, app.config.INGESTION_CALLBACK_TIMEOUT_MS)
        return { status: 'accepted' }
      }
      case 'permanent':
        await finish({ to: 'failed', set: { lastError: outcome.error, finishedAt: new Date() }, event: { type: 'failed', message: outcome.error } })
        throw new UnrecoverableError(outcome.error)
      case 'transient': {
        if (tryNo >= max) {
          const error = `gave up after ${tryNo} attempts: ${outcome.error}`
          await finish({ to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error } })
          throw new UnrecoverableError(error)
        }
        const current = await noteAttempt()
        if (current?.status !== 'running') return { skipped: current?.status ?? 'missing' }
        await setLastError(app, row.id, outcome.error)
        const base = app.config.INGESTION_BACKOFF_MS * 2 ** (tryNo - 1)
        await app.ingestions.note(row, 'running', 'retry_scheduled', `retry ${tryNo + 1}/${max} in about ${Math.round(base * 0.75)} ms (exponential backoff with jitter)`)
        throw new Error(outcome.error)
      }
    }
  },
})
