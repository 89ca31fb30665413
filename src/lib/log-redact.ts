import type { FastifyRequest } from 'fastify'
import { KEY_IN_TEXT } from './api-key-format.js'

/**
 * Bearer secrets that travel in URLs never reach a log line: the token of a signed local-storage
 * URL (`/storage/<token>`) and the signing parameters of pre-signed S3 URLs (or any `token`/
 * `signature`-like query parameter), and API keys wherever they appear in the URL. Headers that
 * carry secrets (Authorization: Bearer <token or API key>) are redacted by pino's `redact`
 * (src/options.ts).
 */
const SECRET_PARAM = /^(x-amz-(signature|credential|security-token)|signature|sig|token|access_token|refresh_token|code|api_key|apikey|key)$/i
const CENSOR = '[redacted]'

/**
 * API keys (`qk_<public id>_<secret>`, issue 21) anywhere in a text keep only their public part,
 * `qk_<public id>_[redacted]`: enough to tell which key it was, nothing to use it with.
 */
export function redactKeys (text: string): string {
  return text.includes('qk_') ? text.replace(KEY_IN_TEXT, `qk_$1_${CENSOR}`) : text
}

export function redactUrl (url: string): string {
  if (url.includes('qk_')) url = redactKeys(url)
  const q = url.indexOf('?')
  let path = q === -1 ? url : url.slice(0, q)
  path = path.replace(/\/storage\/[^/]+/i, `/storage/${CENSOR}`)
  if (q === -1) return path
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    let decoded = name
    try { decoded = decodeURIComponent(name) } catch { /* keep the raw name */ }
    return eq !== -1 && SECRET_PARAM.test(decoded) ? `${name}=${CENSOR}` : pair
  })
  return `${path}?${query.join('&')}`
}

/** Fastify's own request serializer, with the URL redacted. */
export function serializeRequest (req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(req.url),
    version: req.headers?.['accept-version'],
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}
