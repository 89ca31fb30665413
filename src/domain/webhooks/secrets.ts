import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Webhook signing secrets: shown once (`whsec_<base64>`, the Standard Webhooks format), stored
 * encrypted (AES-256-GCM) under a key derived from JWT_SECRET with its own purpose label, so the
 * worker can sign and a database dump alone cannot. Rotating JWT_SECRET makes stored secrets
 * unreadable: rotate the endpoints' secrets then (PATCH /webhooks/:id {rotateSecret: true}).
 */
export function secretBox (masterSecret: string) {
  const key = Buffer.from(hkdfSync('sha256', masterSecret, 'quire', 'quire:webhook-secret:v1', 32))

  function seal (plain: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.')
  }

  /** The secret, or throws when the stored value was not sealed with this key. */
  function open (sealed: string): string {
    const [v, iv, tag, body] = sealed.split('.')
    if (v !== 'v1' || iv === undefined || tag === undefined || body === undefined) throw new Error('not a sealed webhook secret')
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
  }

  return { seal, open }
}

export type SecretBox = ReturnType<typeof secretBox>

/** A new signing secret: 32 random bytes, as Standard Webhooks libraries take it. */
export const newSigningSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`
