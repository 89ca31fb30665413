import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Value } from '@sinclair/typebox/value'
import { DocumentFields, type DocumentFieldsInput } from '../schemas/documents.js'
import { insertDocument, normalizeTags, originalKey, type NewDocument } from './documents.js'
import { finishProcessing } from './documents.js'
import type { DocumentRow } from './document-access.js'
import { AppError, forbidden } from '../lib/errors.js'

/** Validates document fields collected outside Fastify's validator (multipart) -> 400 with details. */
export function checkFields (fields: unknown): DocumentFieldsInput {
  const errors = [...Value.Errors(DocumentFields, fields)]
  if (errors.length > 0) {
    const details = errors.slice(0, 10).map(e => ({ path: e.path === '' ? '/' : e.path, message: e.message }))
    throw new AppError(400, 'validation_failed', `Invalid fields: ${details.map(d => `${d.path} ${d.message}`).join('; ')}`, details)
  }
  return fields as DocumentFieldsInput
}

/** A safe display filename: no path, no control characters, at most 255 characters. */
export function cleanFilename (name: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  const base = (name ?? '').split(/[/\\]/).pop()?.replace(/[\0-\x1f\x7f]/g, '').trim() ?? ''
  return [...base].slice(0, 255).join('') || 'upload'
}

/**
 * The last step of every upload: the object is stored and verified, now the row. If the insert
 * fails the object is deleted (a document never points at a missing object and no object is left
 * without its row). Images are queued for a thumbnail.
 */
export async function createDocumentRecord (
  app: FastifyInstance,
  request: FastifyRequest,
  stored: { id: string, filename: string, mimeType: string, size: number, sha256: string },
  fields: DocumentFieldsInput,
  opts: { claimUploadId?: string, via: 'multipart' | 'presigned' }
): Promise<DocumentRow> {
  // Publishing to everyone takes share rights, at creation as on PATCH.
  if (fields.visibility === 'internal' && !request.user.can('documents:share') && !request.user.can('documents:manage')) {
    throw forbidden('Creating an internal document takes the documents:share permission')
  }
  const input: NewDocument = {
    id: stored.id,
    ownerId: request.user.id,
    title: fields.title ?? stored.filename,
    description: fields.description ?? null,
    filename: stored.filename,
    mimeType: stored.mimeType,
    size: stored.size,
    sha256: stored.sha256,
    visibility: fields.visibility ?? 'private',
    tags: normalizeTags(fields.tags),
  }
  let row: DocumentRow
  try {
    row = await insertDocument(app.db, input, { claimUploadId: opts.claimUploadId })
  } catch (err) {
    // Another request completed this upload: the object is that document's now.
    if (err instanceof AppError && err.code === 'upload_completed') throw err
    await app.storage.delete(originalKey(stored.id)).catch((e: unknown) => request.log.error({ err: e, key: originalKey(stored.id) }, 'could not delete an orphaned object'))
    throw err
  }
  if (row.status === 'processing') {
    try {
      await app.enqueue('document-thumbnail', { documentId: row.id })
    } catch (err) {
      request.log.warn({ err, documentId: row.id }, 'thumbnail job could not be queued')
      await finishProcessing(app.db, row.id, { ok: false, error: 'the thumbnail job could not be queued' })
      row = { ...row, status: 'failed', error: 'the thumbnail job could not be queued', version: row.version + 1 }
    }
  }
  await app.audit(request, { action: 'document.create', subject: `document:${row.id}`, payload: { via: opts.via, filename: row.filename, mimeType: row.mimeType, size: row.size, sha256: row.sha256 } })
  return row
}
