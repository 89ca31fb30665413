import { processorOf } from './types.js'
import { requeueEach } from './requeue.js'
import { finishScan, scanningSince, type ScanOutcome } from '../domain/document-scan.js'
import { getDocumentRow, wantsThumbnail } from '../domain/documents.js'
import { clamdClient, ScannerUnavailable } from '../scanning/clamd.js'
import { StorageNotFound } from '../storage/types.js'

/** A document still `scanning` this long after its last change, without a live job, is queued again. */
export const SCAN_SWEEP_GRACE_MS = 5 * 60_000

/**
 * Streams a `scanning` document's object to clamd and moves it on (src/domain/document-scan.ts
 * finishScan): clean -> thumbnail or ready, found -> infected. clamd unreachable (or failing):
 * thrown, so the job retries (backoff `scan-retry`) and the document keeps waiting, unless
 * SCAN_FAIL_OPEN lets it through unscanned (logged as a warning and audited).
 */
export default processorOf({
  name: 'document-scan',
  async process (app, job) {
    const doc = await getDocumentRow(app.db, job.data.documentId)
    if (doc === null || doc.status !== 'scanning') return { skipped: doc?.status ?? 'missing' }
    const log = app.log.child({ documentId: doc.id, jobId: job.id })
    let outcome: ScanOutcome
    try {
      if (app.config.CLAMD_URL === '') throw new ScannerUnavailable('CLAMD_URL is not set in this worker (the API that stored the document has it)')
      const verdict = await clamdClient(app.config.CLAMD_URL, { timeoutMs: app.config.SCAN_TIMEOUT_MS }).scan(await app.storage.get(doc.storageKey))
      outcome = verdict.clean ? { kind: 'clean' } : { kind: 'infected', signature: verdict.signature }
    } catch (err) {
      if (err instanceof StorageNotFound) {
        log.error({ key: doc.storageKey }, 'scan: the document has no object; left in scanning')
        return { skipped: 'no object' }
      }
      // Storage errors are retried the same way; only a scanner that could not be reached may fail
      // open (one that dropped the object half-way may have refused it for its size).
      if (!(err instanceof ScannerUnavailable) || err.midStream || !app.config.SCAN_FAIL_OPEN) {
        log.warn({ err, attempt: job.attemptsMade + 1 }, 'scan: no verdict, the document stays scanning and the scan is retried')
        throw err
      }
      log.warn({ err }, 'scan: clamd unavailable and SCAN_FAIL_OPEN=true: the document is let through UNSCANNED')
      outcome = { kind: 'unscanned', reason: err.message }
    }
    const thumbnail = wantsThumbnail(doc.mimeType)
    const status = await finishScan({ db: app.db, audit: app.recordAudit }, doc, outcome, thumbnail)
    if (status === 'infected' && outcome.kind === 'infected') log.warn({ signature: outcome.signature }, 'scan: malware found; the document is infected')
    if (status === 'processing') await app.documentService.newObjectDeps.queueThumbnail(doc.id, null)
    return { status, outcome: outcome.kind }
  },
})

/** Queues the scan again of documents left in `scanning` without a live scan job. */
export const scanSweep = processorOf({
  name: 'scan-sweep',
  async process (app, job) {
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const ids = await scanningSince(app.db, new Date(now.getTime() - SCAN_SWEEP_GRACE_MS), 500)
    const requeued = await requeueEach(app, 'document-scan', ids.map(documentId => ({ documentId })))
    if (requeued > 0) app.log.warn({ requeued }, 'scan sweep: queued again the scans of documents left in scanning')
    return { requeued }
  },
})
