import { Value } from '@sinclair/typebox/value'
import { DocumentFields, type DocumentFieldsInput } from '../schemas/documents.js'
import { AppError } from '../lib/errors.js'

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
