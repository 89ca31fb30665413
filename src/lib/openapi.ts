// Completes the OpenAPI document @fastify/swagger generates with what every operation shares:
// the headers every response carries, 429 on rate-limited routes, operation ids, optional bodies.
import { STATUS_CODES } from 'node:http'

/** What the document cannot tell about a route, gathered from its options (see plugins/external/swagger.ts). */
export interface RouteFacts {
  /** The global rate limit applies (routes opt out with `config.rateLimit: false`). */
  rateLimited: boolean
  /** The body may be left out (a TypeBox `Type.Optional` body schema; the route defaults it). */
  optionalBody: boolean
  /** Who may call it: `public`, `signed in` (any authenticated caller), or the permission it needs. */
  access?: string
}

/** Fastify's `/documents/:id/` -> `/documents/{id}`, the key the document lists it under. */
export function toOpenApiPath (url: string): string {
  const path = url.replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, '{$1}')
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

export const factsKey = (method: string, url: string): string => `${method.toUpperCase()} ${toOpenApiPath(url)}`

const int = { type: 'integer', minimum: 0 }

/** Response headers shared by many operations, referenced from `components.headers`. */
export const COMMON_HEADERS = {
  'X-Request-Id': {
    description: 'The id of this request: the caller\'s `X-Request-Id` when it matches `^[\\w.:@-]{1,128}$`, else a generated one. Error bodies repeat it as `requestId`.',
    schema: { type: 'string' },
  },
  'X-RateLimit-Limit': { description: 'Requests allowed per window', schema: int },
  'X-RateLimit-Remaining': { description: 'Requests left in the current window', schema: int },
  'X-RateLimit-Reset': { description: 'Seconds until the current window ends', schema: int },
  'Retry-After': { description: 'Seconds to wait before trying again', schema: int },
} as const

type HeaderName = keyof typeof COMMON_HEADERS
const ref = (name: HeaderName) => ({ $ref: `#/components/headers/${name}` })
const RATE_LIMIT_HEADERS: HeaderName[] = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']

const REQUEST_ID_PARAM = {
  name: 'X-Request-Id',
  in: 'header',
  required: false,
  description: 'A correlation id to use for this request (echoed in the `X-Request-Id` response header when it matches `^[\\w.:@-]{1,128}$`)',
  schema: { type: 'string' },
}

interface Response { description?: string, headers?: Record<string, unknown>, content?: unknown }
interface Operation {
  operationId?: string
  'x-permission'?: string
  parameters?: Array<{ name?: string, in?: string }>
  requestBody?: { required?: boolean }
  responses?: Record<string, Response>
}
export interface Document { paths?: Record<string, Record<string, unknown>>, components?: Record<string, unknown> }

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'])

/** `GET /documents/{id}/shares` -> `getDocumentsByIdShares`: unique per method and path, URL-safe. */
export function operationId (method: string, path: string): string {
  const words = path.split('/').filter(s => s !== '').map(s => {
    const param = /^\{(.+)\}$/.exec(s)?.[1]
    const name = (param ?? s).split(/[^A-Za-z0-9]+/).filter(w => w !== '').map(w => w[0]?.toUpperCase() + w.slice(1)).join('')
    return param === undefined ? name : `By${name}`
  })
  return method.toLowerCase() + words.join('')
}

function completeOperation (method: string, path: string, op: Operation, facts: RouteFacts): Operation {
  const out: Operation = { ...op, operationId: op.operationId ?? operationId(method, path) }
  if (facts.access !== undefined) out['x-permission'] = facts.access
  const params = op.parameters ?? []
  if (!params.some(p => p.in === 'header' && p.name?.toLowerCase() === 'x-request-id')) out.parameters = [...params, REQUEST_ID_PARAM]
  if (facts.optionalBody && op.requestBody !== undefined) out.requestBody = { ...op.requestBody, required: false }
  const responses = { ...op.responses }
  if (facts.rateLimited && responses['429'] === undefined) {
    responses['429'] = { content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } }
  }
  for (const [status, res] of Object.entries(responses)) {
    const names: HeaderName[] = ['X-Request-Id']
    if (facts.rateLimited) names.push(...RATE_LIMIT_HEADERS)
    if (status === '429') names.push('Retry-After')
    const description = res.description === undefined || res.description === 'Default Response' ? STATUS_CODES[status] ?? res.description : res.description
    responses[status] = { ...res, description, headers: { ...Object.fromEntries(names.map(n => [n, ref(n)])), ...res.headers } }
  }
  out.responses = responses
  return out
}

/** Adds the shared parts to every operation. Routes without facts are treated as rate limited, body required. */
export function completeDocument<T> (input: T, facts: ReadonlyMap<string, RouteFacts>): T {
  const doc = input as Document
  const paths: Record<string, Record<string, unknown>> = {}
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    paths[path] = Object.fromEntries(Object.entries(item).map(([method, op]) => METHODS.has(method)
      ? [method, completeOperation(method, path, op as Operation, facts.get(`${method.toUpperCase()} ${path}`) ?? { rateLimited: true, optionalBody: false })]
      : [method, op]))
  }
  const components = { ...doc.components, headers: { ...(doc.components?.headers as object | undefined), ...COMMON_HEADERS } }
  return { ...doc, paths, components } as T
}
