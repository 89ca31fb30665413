import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifySchema } from 'fastify'
import { OptionalKind } from '@sinclair/typebox'
import { completeDocument, factsKey, type RouteFacts } from '../../src/lib/openapi.js'
import { describeGate, type PermissionGate } from '../../src/domain/permissions.js'

interface ObjectSchema { properties?: Record<string, { default?: unknown }>, required?: string[] }

function withOptionalDefaults (schema: FastifySchema): FastifySchema {
  const query = (schema as FastifySchema | undefined)?.querystring as ObjectSchema | undefined
  if (query?.required === undefined || query.properties === undefined) return schema
  const properties = query.properties
  return { ...schema, querystring: { ...query, required: query.required.filter(k => properties[k]?.default === undefined) } }
}

type OpenApiDoc = { paths?: Record<string, Record<string, unknown>> }

/** Collection routes are registered as `/<folder>/`; list them as `/documents`, the path clients use. */
function withoutTrailingSlashes<T> (doc: T): T {
  const paths = (doc as OpenApiDoc).paths
  if (paths === undefined) return doc
  const out: Record<string, Record<string, unknown>> = {}
  for (const [path, ops] of Object.entries(paths)) {
    const key = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
    out[key] = { ...out[key], ...ops }
  }
  return { ...doc, paths: out }
}

export default fp(async (fastify) => {
  // What the generated document cannot tell about a route (see src/lib/openapi.ts), by method and path.
  const facts = new Map<string, RouteFacts>()
  fastify.addHook('onRoute', (route) => {
    const body = route.schema?.body as Record<symbol, unknown> | undefined
    const config = route.config as { rateLimit?: unknown, public?: boolean, permission?: PermissionGate, sessionOnly?: boolean } | undefined
    // As plugins/app/auth.ts reads it: a list means any one of them, `{ all }` each; sessionOnly refuses API keys.
    const who = config?.public === true ? 'public' : config?.permission === undefined ? 'signed in' : describeGate(config.permission)
    const access = config?.sessionOnly === true ? `${who}, user session (no API key)` : who
    const routeFacts = { rateLimited: config?.rateLimit !== false, optionalBody: body?.[OptionalKind] === 'Optional', access }
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) facts.set(factsKey(method, route.url), routeFacts)
  })
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Quire API',
        description: 'User, document and ingestion management. Errors always use the ErrorResponse shape.',
        version: '0.1.0',
      },
      servers: [{ url: fastify.config.PUBLIC_URL }],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearerAuth: [] }],
    },
    // A query parameter with a default is optional for the caller, though the validated type has it.
    transform: ({ schema, url }) => ({ schema: withOptionalDefaults(schema), url }),
    transformObject: (doc) => completeDocument(withoutTrailingSlashes('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject), facts),
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', staticCSP: false })
}, { name: 'swagger', dependencies: ['config'] })
