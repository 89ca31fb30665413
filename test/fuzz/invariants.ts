// What every response must satisfy, whatever was sent.

export interface InjectedResponse {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
}

/** Stack frames, file positions, SQL errors: none of it may reach a client. */
const LEAK = /\n\s+at [\w$.<>[\] ]+ \(|\bat [\w$.<>]+ \([^)]*:\d+:\d+\)|\.(?:ts|js|mjs|cjs):\d+:\d+|node_modules\/|\bER_[A-Z_]{4,}\b|SQL syntax|sqlMessage|sqlState|Traceback \(most recent/

const CODE = /^[a-z][a-z0-9_]*$/

const isTextual = (ct: string): boolean => ct === '' || /json|text|xml|html|event-stream/.test(ct)

/** Returns the broken rules (empty when the response is fine). */
export function checkResponse (res: InjectedResponse, method: string): string[] {
  const problems: string[] = []
  const ct = String(res.headers['content-type'] ?? '')
  if (res.statusCode >= 500) problems.push(`5xx: ${res.statusCode}`)
  const rid = res.headers['x-request-id']
  if (typeof rid !== 'string' || rid === '') problems.push('no x-request-id header')
  if (isTextual(ct) && LEAK.test(res.body)) problems.push(`leaks internals: ${JSON.stringify(LEAK.exec(res.body)?.[0])}`)
  if (res.statusCode >= 400 && method !== 'HEAD') {
    let body: Record<string, unknown> | null = null
    try { body = JSON.parse(res.body) as Record<string, unknown> } catch { problems.push(`error body is not JSON (content-type ${ct})`) }
    if (body !== null) {
      if (!/^application\/json/.test(ct)) problems.push(`error content-type ${ct}`)
      if (body.statusCode !== res.statusCode) problems.push(`body.statusCode ${String(body.statusCode)} != ${res.statusCode}`)
      if (typeof body.error !== 'string' || body.error === '') problems.push('body.error missing')
      if (typeof body.code !== 'string' || !CODE.test(body.code)) problems.push(`body.code not snake_case: ${JSON.stringify(body.code)}`)
      if (typeof body.message !== 'string') problems.push('body.message missing')
      if (typeof body.requestId !== 'string' || body.requestId !== rid) problems.push(`body.requestId ${JSON.stringify(body.requestId)} != header ${JSON.stringify(rid)}`)
      const extra = Object.keys(body).filter(k => !['statusCode', 'error', 'code', 'message', 'requestId', 'details'].includes(k))
      if (extra.length > 0) problems.push(`unexpected error properties: ${extra.join(', ')}`)
    }
  } else if (/^application\/json/.test(ct) && res.body !== '') {
    try { JSON.parse(res.body) } catch { problems.push('2xx JSON body does not parse') }
  }
  return problems
}

/** Is this status documented for the operation (exactly, by class like 4XX, or by default)? */
export function documented (responses: string[], status: number): boolean {
  const s = String(status)
  return responses.includes(s) || responses.includes(`${s[0] ?? ''}XX`) || responses.includes('default')
}
