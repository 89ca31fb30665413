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
 * keyword, src/lib/lowercase-keyword.ts), before any handler sees it (a hook that runs before
 * validation, like the callback's signature check, lower-cases what it reads itself). Ids are
 * UUIDv7 text: MySQL, JS and Redis must all see the one canonical (lower-case) form.
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

/**
 * OpenAPI only: response headers a route sets, under the `headers` keyword of a `response` entry
 * (read by @fastify/swagger, ignored by Fastify's serializer). The headers every response carries
 * (X-Request-Id, X-RateLimit-*, Retry-After on 429) are added centrally by plugins/external/swagger.ts.
 */
const RESPONSE_HEADERS = {
  ETag: 'Entity tag of this representation (strong, quoted): send it back in If-None-Match, If-Match or If-Range',
  Location: 'URL of the created resource, or of the redirect target',
  'Content-Range': '`bytes <start>-<end>/<size>` on 206, `bytes */<size>` on 416',
  'Content-Disposition': '`attachment` with the stored filename (RFC 6266)',
  'Accept-Ranges': '`bytes`: single byte ranges are served',
} as const

export type ResponseHeaderName = keyof typeof RESPONSE_HEADERS

const headerDocs = (names: ResponseHeaderName[]) =>
  Object.fromEntries(names.map(n => [n, { type: 'string', description: RESPONSE_HEADERS[n] }]))

/** `schema` documented with the response headers it is sent with. */
export const withHeaders = <T extends TSchema>(schema: T, ...names: ResponseHeaderName[]): T => ({ ...schema, headers: headerDocs(names) })

/** The error response, documented with response headers it is sent with (e.g. Content-Range on 416). */
export const errorWithHeaders = (...names: ResponseHeaderName[]) => withHeaders(errorRef, ...names)

/** A binary body (not JSON) of the given media types (ranges such as `*\/*` allowed), with its response headers. */
export function binaryResponse (mediaTypes: string[], description: string, ...headers: ResponseHeaderName[]) {
  const content = Object.fromEntries(mediaTypes.map(t => [t, { schema: { type: 'string', format: 'binary' } }]))
  return Type.Unsafe<unknown>({ description, content, headers: headerDocs(headers) })
}

/** A text body of one media type (e.g. the Prometheus exposition format). */
export const textResponse = (mediaType: string, description: string) =>
  Type.Unsafe<string>({ description, content: { [mediaType]: { schema: { type: 'string' } } } })

/** Conditional and ranged GET request headers, documented; any value is accepted (the handler interprets it). */
export const RequestHeader = {
  ifNoneMatch: Type.Optional(Type.String({ description: 'ETag(s) the client holds: 304 Not Modified when one matches (`*` matches any)' })),
  range: Type.Optional(Type.String({ description: 'One byte range: `bytes=<start>-<end>`, `bytes=<start>-` or `bytes=-<suffix>`: 206 Partial Content (416 when unsatisfiable; other forms are ignored)' })),
  ifRange: Type.Optional(Type.String({ description: 'The ETag the client holds: Range applies only while it is current, otherwise the whole body (200)' })),
}
