import { createHmac, hkdfSync } from 'node:crypto'
import { safeEqual } from '../lib/tokens.js'

/** What a signed local-storage URL allows: one method on one key until `exp` (unix seconds). */
export interface SignedGrant {
  key: string
  method: 'GET' | 'PUT'
  exp: number
  filename?: string
  contentType?: string
  /** PUT: the most bytes accepted */
  maxBytes?: number
}

const b64 = (s: string) => Buffer.from(s).toString('base64url')

export class UrlSigner {
  private readonly key: Buffer

  /** `secret`: STORAGE_URL_SECRET, used for nothing else; the key is derived from it with a purpose label. */
  constructor (secret: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'quire', 'quire:storage-url:v1', 32))
  }

  private mac (data: string): string {
    return createHmac('sha256', this.key).update(data).digest('base64url')
  }

  sign (grant: SignedGrant): string {
    const payload = b64(JSON.stringify({ k: grant.key, m: grant.method, e: grant.exp, f: grant.filename, t: grant.contentType, l: grant.maxBytes }))
    return `${payload}.${this.mac(payload)}`
  }

  /** The grant, 'expired', or null when the token is malformed or its signature is wrong. */
  verify (token: string, now = Date.now()): SignedGrant | 'expired' | null {
    const dot = token.indexOf('.')
    if (dot <= 0 || token.length > 4096) return null
    const payload = token.slice(0, dot)
    if (!safeEqual(this.mac(payload), token.slice(dot + 1))) return null
    let raw: { k?: unknown, m?: unknown, e?: unknown, f?: unknown, t?: unknown, l?: unknown }
    try {
      raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    } catch {
      return null
    }
    if (typeof raw.k !== 'string' || (raw.m !== 'GET' && raw.m !== 'PUT') || typeof raw.e !== 'number') return null
    if (raw.e * 1000 < now) return 'expired'
    return {
      key: raw.k,
      method: raw.m,
      exp: raw.e,
      filename: typeof raw.f === 'string' ? raw.f : undefined,
      contentType: typeof raw.t === 'string' ? raw.t : undefined,
      maxBytes: typeof raw.l === 'number' ? raw.l : undefined,
    }
  }
}
