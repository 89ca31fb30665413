import fp from 'fastify-plugin'

/**
 * Request body types the API accepts at the root: JSON, and multipart (its own plugin). Routes
 * with other bodies (raw uploads, the signed ingestion callback) add their parsers in their own
 * scope.
 * - `text/plain` is not accepted: sending it to a JSON route is a 415, not a confusing 400.
 * - An empty body labelled `application/json` is no body at all (`curl -X POST -H 'Content-Type:
 *   application/json'` on a bodiless route such as `/auth/logout`); a route that needs a body
 *   still answers 400 validation_failed.
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
    json(request, text, done)
  })
}, { name: 'body-parsers' })
