import { and, eq, lt, sql } from 'drizzle-orm'
import type { Db } from '../db.js'
import { documents, documentVersions } from '../../drizzle/schema/index.js'
import type { DocumentStatus } from '../constants.js'
import { AppError } from '../lib/errors.js'
import type { RecordAudit } from './audit.js'
import type { DocumentRow } from './document-access.js'

/*
 * Malware scanning (CLAMD_URL): a new object starts its document in `scanning`; the worker's
 * `document-scan` job streams it to clamd and moves the document on: clean -> what it would have
 * been without scanning (`processing` for a thumbnail, else `ready`); found -> `infected`. While
 * `scanning` or `infected` its content is never served nor ingested (assertContentAvailable).
 * A new content version goes the same way (its own job, `version` in the payload); each version
 * keeps its own verdict (document_versions.scan_status), so an older version found infected stays
 * unserved after a newer one became current (assertVersionAvailable).
 */

/** The status a document starts in once its object is stored. */
export function initialStatus (opts: { scan: boolean, thumbnail: boolean }): DocumentStatus {
  if (opts.scan) return 'scanning'
  return opts.thumbnail ? 'processing' : 'ready'
}

/**
 * One content version's own verdict (document_versions.scan_status): an older version is served
 * and restored by its own status, since the document's status follows its current version only.
 */
export function assertVersionAvailable (v: { scanStatus: string | null }): void {
  if (v.scanStatus === 'scanning') {
    throw new AppError(409, 'document_scanning', 'This version is being scanned for malware; its content is available once the scan found it clean')
  }
  if (v.scanStatus === 'infected') {
    throw new AppError(403, 'document_infected', 'This version\'s content was found infected; it is never served, restored or ingested')
  }
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
  // An older version's bytes: its own verdict too.
  const [version] = await db.select({ scanStatus: documentVersions.scanStatus }).from(documentVersions)
    .where(and(eq(documentVersions.documentId, id), eq(documentVersions.storageKey, key))).limit(1)
  if (version !== undefined) assertVersionAvailable(version)
}

/** Statuses whose content may not be served or ingested (the SQL rendering of assertContentAvailable). */
export const BLOCKED_STATUSES = ['uploading', 'scanning', 'infected'] as const satisfies readonly DocumentStatus[]

/**
 * The hand-off every path that stores a new object must call once the object is final and its
 * row written with `initialStatus` (multipart and pre-signed uploads through documentService.create,
 * new content versions through versionService; tus the same way): queues the scan of that content
 * `version` (1 by default), or its thumbnail when there is no scan. Resolves with the status the
 * document has afterwards.
 */
export async function queueNewObject (deps: NewObjectDeps, doc: { id: string, status: string, version?: number }, requestId: string | null): Promise<string> {
  const version = doc.version ?? 1
  if (doc.status === 'scanning') {
    try {
      await deps.enqueue('document-scan', version === 1 ? { documentId: doc.id } : { documentId: doc.id, version })
    } catch (err) {
      // Fail closed: the document stays `scanning`; the scan sweep queues it again.
      deps.log.error({ err, documentId: doc.id, requestId }, 'scan job could not be queued; the scan sweep will queue it')
    }
    return doc.status
  }
  if (doc.status === 'processing') return await deps.queueThumbnail(doc.id, requestId, version)
  return doc.status
}

export interface NewObjectDeps {
  enqueue: (name: 'document-scan', data: { documentId: string, version?: number }) => Promise<unknown>
  /** queues the thumbnail of that content version (1 by default), or records why it could not; resolves with the resulting status */
  queueThumbnail: (documentId: string, requestId: string | null, version?: number) => Promise<string>
  log: { error: (obj: object, msg: string) => void }
}

export type ScanOutcome =
  | { kind: 'clean' }
  | { kind: 'infected', signature: string }
  /** clamd was unreachable and SCAN_FAIL_OPEN let the document through unscanned */
  | { kind: 'unscanned', reason: string }

/**
 * Records the verdict on content version `version` once (a concurrent or repeated job finds it
 * recorded and changes nothing): the version's own `scan_status`, and, while that version is
 * still the current one and the document `scanning`, the document's status: clean -> what it
 * would have been without scanning (`processing` for a thumbnail, else `ready`); found ->
 * `infected`. `document` is the document's new status, or null when it was not moved (an older
 * version, or already moved); null altogether when nothing changed. Audited:
 * `document.infected` with the signature (and the version), `document.scan_skipped` when failing open.
 */
export async function finishScan (deps: { db: Db, audit: RecordAudit }, doc: Pick<DocumentRow, 'id'>, version: number, outcome: ScanOutcome, thumbnail: boolean): Promise<{ document: DocumentStatus | null } | null> {
  const status: DocumentStatus = outcome.kind === 'infected' ? 'infected' : thumbnail ? 'processing' : 'ready'
  const verdict = outcome.kind === 'infected' ? 'infected' : outcome.kind === 'unscanned' ? 'skipped' : 'clean'
  const error = outcome.kind === 'infected' ? outcome.signature.slice(0, 2000) : null
  const moved = await deps.db.transaction(async (tx) => {
    const [v] = await tx.update(documentVersions).set({ scanStatus: verdict })
      .where(and(eq(documentVersions.documentId, doc.id), eq(documentVersions.number, version), eq(documentVersions.scanStatus, 'scanning')))
    const [d] = await tx.update(documents)
      .set({ status, error, updatedAt: new Date(), version: sql`${documents.version} + 1` })
      .where(and(eq(documents.id, doc.id), eq(documents.status, 'scanning'), eq(documents.currentVersion, version)))
    return { version: v.affectedRows === 1, document: d.affectedRows === 1 }
  })
  if (!moved.version && !moved.document) return null
  const subject = `document:${doc.id}`
  if (outcome.kind === 'infected') await deps.audit(null, { action: 'document.infected', subject, payload: { signature: outcome.signature, version } })
  if (outcome.kind === 'unscanned') await deps.audit(null, { action: 'document.scan_skipped', subject, payload: { reason: outcome.reason.slice(0, 500), failOpen: true, version } })
  return { document: moved.document ? status : null }
}

/**
 * Content versions left in `scanning` since before `before` (the sweep re-queues those without a
 * live job): versions by their own status, and documents still `scanning` (their current version).
 */
export async function scanningSince (db: Db, before: Date, limit: number): Promise<Array<{ documentId: string, version: number }>> {
  const versions = await db.select({ documentId: documentVersions.documentId, version: documentVersions.number }).from(documentVersions)
    .where(and(eq(documentVersions.scanStatus, 'scanning'), lt(documentVersions.createdAt, before)))
    .orderBy(documentVersions.createdAt).limit(limit)
  const docs = await db.select({ documentId: documents.id, version: documents.currentVersion }).from(documents)
    .where(and(eq(documents.status, 'scanning'), lt(documents.updatedAt, before)))
    .orderBy(documents.updatedAt).limit(limit)
  const unique = new Map([...versions, ...docs].map(r => [`${r.documentId}/${r.version}`, r]))
  return [...unique.values()]
}
