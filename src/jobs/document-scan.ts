import { processorOf } from './types.js'
import { requeueEach } from './requeue.js'
import { finishScan, scanningSince, type ScanOutcome } from '../domain/document-scan.js'
import { getDocumentRow, wantsThumbnail } from '../domain/documents.js'
import { getVersion } from '../domain/versions.js'
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
    const n = job.data.version ?? 1
    const doc = await getDocumentRow(app.db, job.data.documentId)
    if (doc === null) return { skipped: 'missing' }
    const version = await getVersion(app.db, doc.id, n)
    // Still waiting: the version's own status, or (rows from before versions had one) the document's for its current version.
    const waiting = version?.scanStatus === 'scanning' || (n === doc.currentVersion && doc.status === 'scanning')
    if (version === null || !waiting) return { skipped: version?.scanStatus ?? doc.status }
    const log = app.log.child({ documentId: doc.id, version: n, jobId: job.id })
    let outcome: ScanOutcome
    try {
      if (app.config.CLAMD_URL === '') throw new ScannerUnavailable('CLAMD_URL is not set in this worker (the API that stored the document has it)')
      const verdict = await clamdClient(app.config.CLAMD_URL, { timeoutMs: app.config.SCAN_TIMEOUT_MS }).scan(await app.storage.get(version.storageKey))
      outcome = verdict.clean ? { kind: 'clean' } : { kind: 'infected', signature: verdict.signature }
    } catch (err) {
      if (err instanceof StorageNotFound) {
        log.error({ key: version.storageKey }, 'scan: the version has no object; left in scanning')
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
    const moved = await finishScan({ db: app.db, audit: app.recordAudit }, doc, n, outcome, wantsThumbnail(version.mimeType))
    if (moved !== null && outcome.kind === 'infected') log.warn({ signature: outcome.signature }, 'scan: malware found; the version is infected')
    const status = moved?.document ?? null
    if (status === 'processing') await app.documentService.newObjectDeps.queueThumbnail(doc.id, null, n)
    // A new version of a document turned out clean: now the index may follow it (AUTO_REINGEST).
    if (n > 1 && (status === 'processing' || status === 'ready')) await app.versionService.contentChanged({ actorId: null, ip: null, userAgent: null, requestId: null }, doc.id, n)
    return { status, outcome: outcome.kind }
  },
})

/** Queues the scan again of versions (and documents) left in `scanning` without a live scan job. */
export const scanSweep = processorOf({
  name: 'scan-sweep',
  async process (app, job) {
    const now = job.data.now !== undefined ? new Date(job.data.now) : new Date()
    const waiting = await scanningSince(app.db, new Date(now.getTime() - SCAN_SWEEP_GRACE_MS), 500)
    const requeued = await requeueEach(app, 'document-scan', waiting.map(({ documentId, version }) => version === 1 ? { documentId } : { documentId, version }))
    if (requeued > 0) app.log.warn({ requeued }, 'scan sweep: queued again the scans of documents left in scanning')
    return { requeued }
  },
})
