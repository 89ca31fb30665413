import { and, eq, lt, sql } from 'drizzle-orm'
import type { Db } from '../db.js'
import { documents } from '../../drizzle/schema/index.js'
import type { DocumentStatus } from '../constants.js'
import { AppError } from '../lib/errors.js'
import type { RecordAudit } from './audit.js'
import type { DocumentRow } from './document-access.js'

/*
 * Malware scanning (CLAMD_URL): a new object starts its document in `scanning`; the worker's
 * `document-scan` job streams it to clamd and moves the document on: clean -> what it would have
 * been without scanning (`processing` for a thumbnail, else `ready`); found -> `infected`. While
 * `scanning` or `infected` its content is never served nor ingested (assertContentAvailable).
 */

/** The status a document starts in once its object is stored. */
export function initialStatus (opts: { scan: boolean, thumbnail: boolean }): DocumentStatus {
  if (opts.scan) return 'scanning'
  return opts.thumbnail ? 'processing' : 'ready'
}

/** 409 while the scan runs (retry later), 403 once something was found: the bytes stay unserved. */
export function assertContentAvailable (doc: Pick<DocumentRow, 'status' | 'error'>): void {
  if (doc.status === 'scanning') {
    throw new AppError(409, 'document_scanning', 'The document is being scanned for malware; its content is available once its status is ready')
  }
  if (doc.status === 'infected') {
    throw new AppError(403, 'document_infected', `The document's content was found infected${doc.error !== null ? ` (${doc.error})` : ''}; it is never served or ingested: delete it`)
  }
}

const DOCUMENT_KEY = /^documents\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\//

/**
 * For URLs signed before a document was refused (GET /storage/:token): an object of a document
 * that is `scanning` or `infected` now is not served either. Other keys pass.
 */
export async function assertKeyServable (db: Db, key: string): Promise<void> {
  const id = DOCUMENT_KEY.exec(key)?.[1]
  if (id === undefined) return
  const [row] = await db.select({ status: documents.status, error: documents.error }).from(documents).where(eq(documents.id, id)).limit(1)
  if (row !== undefined) assertContentAvailable(row)
}

/** Statuses whose content may not be served or ingested (the SQL rendering of assertContentAvailable). */
export const BLOCKED_STATUSES = ['uploading', 'scanning', 'infected'] as const satisfies readonly DocumentStatus[]

/**
 * The hand-off every path that stores a new object must call once the object is final and its
 * row written with `initialStatus` (multipart and pre-signed uploads today through
 * documentService.create; tus and new versions call it the same way): queues the scan, or the
 * thumbnail when there is no scan. Resolves with the status the document has afterwards.
 */
export async function queueNewObject (deps: NewObjectDeps, doc: { id: string, status: string }, requestId: string | null): Promise<string> {
  if (doc.status === 'scanning') {
    try {
      await deps.enqueue('document-scan', { documentId: doc.id })
    } catch (err) {
      // Fail closed: the document stays `scanning`; the scan sweep queues it again.
      deps.log.error({ err, documentId: doc.id, requestId }, 'scan job could not be queued; the scan sweep will queue it')
    }
    return doc.status
  }
  if (doc.status === 'processing') return await deps.queueThumbnail(doc.id, requestId)
  return doc.status
}

export interface NewObjectDeps {
  enqueue: (name: 'document-scan', data: { documentId: string }) => Promise<unknown>
  /** queues the thumbnail, or records why it could not; resolves with the resulting status */
  queueThumbnail: (documentId: string, requestId: string | null) => Promise<string>
  log: { error: (obj: object, msg: string) => void }
}

export type ScanOutcome =
  | { kind: 'clean' }
  | { kind: 'infected', signature: string }
  /** clamd was unreachable and SCAN_FAIL_OPEN let the document through unscanned */
  | { kind: 'unscanned', reason: string }

/**
 * Moves a `scanning` document on after its scan, once (a concurrent or repeated job finds it moved
 * and changes nothing). Returns the new status, or null when it was no longer `scanning`.
 * Audited: `document.infected` with the signature, `document.scan_skipped` when failing open.
 */
export async function finishScan (deps: { db: Db, audit: RecordAudit }, doc: Pick<DocumentRow, 'id' | 'mimeType'>, outcome: ScanOutcome, thumbnail: boolean): Promise<DocumentStatus | null> {
  const status: DocumentStatus = outcome.kind === 'infected' ? 'infected' : thumbnail ? 'processing' : 'ready'
  const error = outcome.kind === 'infected' ? outcome.signature.slice(0, 2000) : null
  const [res] = await deps.db.update(documents)
    .set({ status, error, updatedAt: new Date(), version: sql`${documents.version} + 1` })
    .where(and(eq(documents.id, doc.id), eq(documents.status, 'scanning')))
  if (res.affectedRows !== 1) return null
  const subject = `document:${doc.id}`
  if (outcome.kind === 'infected') await deps.audit(null, { action: 'document.infected', subject, payload: { signature: outcome.signature } })
  if (outcome.kind === 'unscanned') await deps.audit(null, { action: 'document.scan_skipped', subject, payload: { reason: outcome.reason.slice(0, 500), failOpen: true } })
  return status
}

/** Documents left in `scanning` since before `before` (the sweep re-queues those without a live job). */
export async function scanningSince (db: Db, before: Date, limit: number): Promise<string[]> {
  const rows = await db.select({ id: documents.id }).from(documents)
    .where(and(eq(documents.status, 'scanning'), lt(documents.updatedAt, before)))
    .orderBy(documents.updatedAt).limit(limit)
  return rows.map(r => r.id)
}
