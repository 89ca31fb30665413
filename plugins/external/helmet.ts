import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import fastifyHelmet from '@fastify/helmet'
import helmet, { type HelmetOptions } from 'helmet'

const OPTIONS = {
  // Swagger UI at /docs loads its own script and styles from this origin.
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      styleSrc: ["'self'", "'unsafe-inline'"],
      scriptSrc: ["'self'"],
    },
  },
  crossOriginResourcePolicy: { policy: 'same-site' },
} satisfies HelmetOptions

/**
 * The headers helmet's middleware sets for `options`, read off one run against a recording
 * response. They are the same for every request as long as no CSP directive is a function and
 * no nonce is asked for, which holds for OPTIONS.
 */
export function helmetHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader (name: string, value: string | number | readonly string[]) { headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value) },
    removeHeader (name: string) { Reflect.deleteProperty(headers, name.toLowerCase()) },
  }
  let failed: unknown = null
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => { if (err !== undefined && err !== null) failed = err })
  if (failed !== null) throw failed
  return headers
}

/**
 * Security headers on every answer (errors and 404s included). @fastify/helmet 13 runs
 * `helmet(options)` for every request, building each middleware and its CSP text anew: 12 % of
 * the CPU of the bench's hello and ~6 % of an authenticated read, in profiles. The global policy
 * has no per-request part, so its headers are computed once here and handed to every reply.
 * @fastify/helmet stays registered, not global: it still serves a route that gives its own
 * `helmet` options (those routes get its headers instead) and `reply.helmet()`.
 */
export default fp(async (fastify) => {
  await fastify.register(fastifyHelmet, { ...OPTIONS, global: false })
  const headers = helmetHeaders(OPTIONS)
  fastify.addHook('onRequest', (request, reply, done) => {
    if ((request.routeOptions.config as { helmet?: unknown }).helmet === undefined) reply.headers(headers)
    done()
  })
}, { name: 'helmet', dependencies: ['config'] })
