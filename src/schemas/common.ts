import { Type, type TSchema } from '@sinclair/typebox'

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String({ description: 'stable snake_case code clients can switch on' }),
  message: Type.String(),
  requestId: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
}, { $id: 'ErrorResponse', additionalProperties: false })

/**
 * Marks a string as case-insensitive: validation lower-cases it in place (the `x-lowercase`
 * keyword, src/lib/lowercase-keyword.ts), and path params so marked are lower-cased before any
 * hook sees them (plugins/core/canonical-params.ts). Ids are UUIDv7 text: MySQL, JS and Redis
 * must all see the one canonical (lower-case) form.
 */
export const LOWERCASE = { 'x-lowercase': true } as const

/**
 * An id in a path, query string or body: any string up to 64 characters (a malformed one is
 * answered 404 by the handlers, not 400: no shape leak), lower-cased on the way in.
 */
export const Id = (options: { description?: string } = {}) => Type.String({ maxLength: 64, ...LOWERCASE, ...options })

/** Opaque id in a path. Malformed ids are answered 404 by the handlers, not 400 (no shape leak). */
export const IdParam = Type.Object({ id: Id() }, { additionalProperties: false })

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
}

export const Page = <T extends TSchema>(item: T) => Type.Object({
  items: Type.Array(item),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
})

export const IsoDate = Type.String({ format: 'date-time' })
export const NullableDate = Type.Union([IsoDate, Type.Null()])

const errorRef = Type.Ref(ErrorResponse)

/** The error responses a route documents, as `response` schema entries. */
export function errors (...codes: number[]): Record<number, typeof errorRef> {
  const out: Record<number, typeof errorRef> = {}
  for (const c of codes) out[c] = errorRef
  return out
}

/** Errors every authenticated route can give. */
export const authErrors = errors(400, 401, 403, 429, 500, 503)

export const NoContent = Type.Null({ description: 'No content' })
