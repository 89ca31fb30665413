import fp from 'fastify-plugin'
import { AppError } from '../../src/lib/errors.js'

/** A `\uD800`-`\uDFFF` escape: the only way a JSON text can carry a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/

const LONE_SURROGATE = /\p{Cs}/u

/** Whether every string (key or value) in `v` is well-formed UTF-16 (no lone surrogate); iterative, for deep bodies. */
function wellFormed (v: unknown): boolean {
  const stack: unknown[] = [v]
  while (stack.length > 0) {
    const x = stack.pop()
    if (typeof x === 'string') {
      if (LONE_SURROGATE.test(x)) return false
    } else if (x !== null && typeof x === 'object') {
      for (const [k, y] of Object.entries(x)) {
        if (LONE_SURROGATE.test(k)) return false
        stack.push(y)
      }
    }
  }
  return true
}

/**
 * Request body types the API accepts at the root: JSON, and multipart (its own plugin). Routes
 * with other bodies (raw uploads, the signed ingestion callback) add their parsers in their own
 * scope.
 * - `text/plain` is not accepted: sending it to a JSON route is a 415, not a confusing 400.
 * - An empty body labelled `application/json` is no body at all (`curl -X POST -H 'Content-Type:
 *   application/json'` on a bodiless route such as `/auth/logout`); a route that needs a body
 *   still answers 400 validation_failed.
 * - A string with a lone surrogate (`"\ud800"`) is a 400: it is not text, MySQL's JSON columns
 *   refuse it and text columns would silently store U+FFFD.
 */
export default fp(async (fastify) => {
  const json = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser(['application/json', 'text/plain'])
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') {
      done(null, undefined)
      return
    }
    if (!SURROGATE_ESCAPE.test(text)) {
      json(request, text, done)
      return
    }
    json(request, text, (err, value) => {
      if (err === null && !wellFormed(value)) {
        done(new AppError(400, 'validation_failed', 'Invalid body: strings must be well-formed Unicode (a lone surrogate \\uD800-\\uDFFF was sent)'), undefined)
        return
      }
      done(err, value)
    })
  })
}, { name: 'body-parsers' })
