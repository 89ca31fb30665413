// Reads the operations out of the app's own OpenAPI document (GET /docs/json).
import type { FastifyInstance } from 'fastify'

export type JsonSchema = Record<string, unknown> & {
  $ref?: string
  type?: string | string[]
  enum?: unknown[]
  const?: unknown
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  nullable?: boolean
  format?: string
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean | JsonSchema
}

export interface Param { name: string, in: 'path' | 'query' | 'header' | 'cookie', schema: JsonSchema, required: boolean }

export interface Operation {
  /** e.g. `PATCH /documents/{id}` */
  key: string
  method: string
  /** OpenAPI path template, e.g. `/documents/{id}` */
  path: string
  params: Param[]
  /** content type -> schema of the request body, when documented */
  body: Record<string, JsonSchema>
  bodyRequired: boolean
  /** `security: []` on the operation */
  public: boolean
  /** documented response status codes ('200', '4XX', 'default', ...) */
  responses: string[]
}

export interface OpenApiDoc {
  openapi: string
  paths: Record<string, Record<string, {
    parameters?: Array<{ name: string, in: Param['in'], schema?: JsonSchema, required?: boolean }>
    requestBody?: { required?: boolean, content?: Record<string, { schema?: JsonSchema }> }
    responses?: Record<string, unknown>
    security?: unknown[]
  }>>
  components?: { schemas?: Record<string, JsonSchema> }
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'options', 'head'])

export async function fetchOpenApi (app: FastifyInstance): Promise<OpenApiDoc> {
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  if (res.statusCode !== 200) throw new Error(`GET /docs/json answered ${res.statusCode}`)
  return res.json<OpenApiDoc>()
}

/** Resolves local `#/components/schemas/X` refs (and the swagger plugin's bare `X` ids). */
export function resolver (doc: OpenApiDoc): (s: JsonSchema | undefined) => JsonSchema {
  const schemas = doc.components?.schemas ?? {}
  return function resolve (s) {
    let cur = s ?? {}
    for (let i = 0; i < 10 && typeof cur.$ref === 'string'; i++) {
      const name = cur.$ref.replace(/^#\/components\/schemas\//, '')
      cur = schemas[name] ?? {}
    }
    return cur
  }
}

export function operations (doc: OpenApiDoc): Operation[] {
  const resolve = resolver(doc)
  const ops: Operation[] = []
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (!METHODS.has(m)) continue
      const body: Record<string, JsonSchema> = {}
      for (const [ct, c] of Object.entries(op.requestBody?.content ?? {})) body[ct] = resolve(c.schema)
      ops.push({
        key: `${m.toUpperCase()} ${path}`,
        method: m.toUpperCase(),
        path,
        params: (op.parameters ?? []).map(p => ({ name: p.name, in: p.in, schema: resolve(p.schema), required: p.required === true })),
        body,
        bodyRequired: op.requestBody?.required === true,
        public: Array.isArray(op.security) && op.security.length === 0,
        responses: Object.keys(op.responses ?? {}),
      })
    }
  }
  return ops.sort((a, b) => a.key.localeCompare(b.key))
}

/** `/documents/{id}/shares/{userId}` -> `/documents/:id/shares/:userId` (Fastify's spelling). */
export const toFastifyPath = (p: string): string => p.replace(/\{([^}]+)\}/g, ':$1')
