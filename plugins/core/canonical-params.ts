import fp from 'fastify-plugin'

interface ParamsSchema { properties?: Record<string, { 'x-lowercase'?: unknown }> }

/** The params a route's schema marks `x-lowercase` (ids), computed once per schema. */
const marked = new WeakMap<object, string[]>()
function lowercaseNames (schema: ParamsSchema): string[] {
  let names = marked.get(schema)
  if (names === undefined) {
    names = Object.entries(schema.properties ?? {}).filter(([, s]) => s['x-lowercase'] === true).map(([k]) => k)
    marked.set(schema, names)
  }
  return names
}

/**
 * Path ids in their canonical (lower-case) form from the first hook on: validation lower-cases
 * them too (the `x-lowercase` ajv keyword), but hooks before validation (the callback's replay
 * check) must not see another form than the handlers, MySQL and Redis do.
 */
export default fp(async (fastify) => {
  fastify.addHook('onRequest', async (request) => {
    const schema = request.routeOptions.schema?.params as ParamsSchema | undefined
    if (schema === undefined || schema === null || typeof schema !== 'object') return
    const params = request.params as Record<string, unknown>
    for (const name of lowercaseNames(schema)) {
      const v = params[name]
      if (typeof v === 'string') params[name] = v.toLowerCase()
    }
  })
}, { name: 'canonical-params' })
