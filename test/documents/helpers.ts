import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.js'
import { build, type TestUser } from '../helper.js'
import { startS3 } from './s3-server.js'

interface Teardownable { teardown: (fn: () => unknown) => void }

export type Field = [name: string, value: string]
export interface FilePart { name?: string, filename: string, contentType?: string, data: Buffer | string }

/** A multipart/form-data body (small files only: built in memory). `file` goes after `before`, before `after`. */
export function multipart (file: FilePart | null, before: Field[] = [], after: Field[] = []): { payload: Buffer, headers: Record<string, string> } {
  const boundary = `----quire${randomBytes(8).toString('hex')}`
  const parts: Buffer[] = []
  const field = ([name, value]: Field) => parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`))
  before.forEach(field)
  if (file !== null) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name ?? 'file'}"; filename="${file.filename}"\r\nContent-Type: ${file.contentType ?? 'application/octet-stream'}\r\n\r\n`))
    parts.push(Buffer.isBuffer(file.data) ? file.data : Buffer.from(file.data))
    parts.push(Buffer.from('\r\n'))
  }
  after.forEach(field)
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

export async function upload (app: FastifyInstance, auth: { authorization: string }, file: FilePart, before: Field[] = [], after: Field[] = []) {
  const body = multipart(file, before, after)
  return await app.inject({ method: 'POST', url: '/documents', headers: { ...auth, ...body.headers }, payload: body.payload })
}

/** Builds the app on the given driver ('s3' starts an in-process S3 server with its own bucket). */
export async function buildWith (t: Teardownable, driver: 'local' | 's3', overrides: Partial<Config> = {}): Promise<FastifyInstance> {
  const s3 = driver === 's3' ? await startS3(t) : {}
  return await build(t, { ...s3, ...overrides })
}

/** A tiny valid PNG (1x1, red). */
export const PNG_RED = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64')

/** Every file under a local storage root (relative, sorted), temp files included. */
export function storedFiles (root: string): string[] {
  try {
    return (readdirSync(root, { recursive: true, withFileTypes: true }))
      .filter(e => e.isFile())
      .map(e => `${e.parentPath.slice(root.length + 1)}/${e.name}`.replace(/^\//, ''))
      .sort()
  } catch {
    return []
  }
}

/** Every object under documents/ and uploads/, sorted. */
export async function objects (app: FastifyInstance): Promise<string[]> {
  const keys: string[] = []
  for (const prefix of ['documents/', 'uploads/']) {
    for await (const page of app.storage.list(prefix)) keys.push(...page.map(o => o.key))
  }
  return keys.sort()
}

export async function addVersion (app: FastifyInstance, user: TestUser, id: string, data: string | Buffer, headers: Record<string, string> = {}, filename = 'v.txt') {
  const body = multipart({ filename, contentType: 'text/plain', data })
  return await app.inject({ method: 'POST', url: `/documents/${id}/versions`, headers: { ...user.headers, ...body.headers, ...headers }, payload: body.payload })
}
