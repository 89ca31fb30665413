import type { FastifyInstance } from 'fastify'
import type { TestUser } from '../helper.js'

export interface MadeKey { id: string, key: string, prefix: string, headers: { authorization: string } }

/** Makes an API key through the API, as `owner` (a session), and returns it with its headers. */
export async function makeKey (app: FastifyInstance, owner: Pick<TestUser, 'headers'>, body: { name?: string, scopes: string[], expiresAt?: string | null, userId?: string }): Promise<MadeKey> {
  const res = await app.inject({ method: 'POST', url: '/api-keys', headers: owner.headers, payload: { name: 'test key', ...body } })
  if (res.statusCode !== 201) throw new Error(`POST /api-keys answered ${res.statusCode}: ${res.body}`)
  const k = res.json() as { id: string, key: string, prefix: string }
  return { ...k, headers: { authorization: `Bearer ${k.key}` } }
}
