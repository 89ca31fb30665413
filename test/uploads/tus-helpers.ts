import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import net from 'node:net'
import { once } from 'node:events'
import * as tus from 'tus-js-client'
import type { FastifyInstance } from 'fastify'

/**
 * `total` pseudo-random bytes (an AES-256-CTR key stream: fast, incompressible, never held whole),
 * `chunk` at a time.
 */
export function randomStream (total: number, seed = randomBytes(32), chunk = 1024 * 1024): Readable {
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16))
  const zeros = Buffer.alloc(chunk)
  let sent = 0
  return new Readable({
    highWaterMark: chunk,
    read () {
      if (sent >= total) { this.push(null); return }
      const n = Math.min(chunk, total - sent)
      sent += n
      this.push(cipher.update(n === chunk ? zeros : zeros.subarray(0, n)))
    },
  })
}

/** Writes `total` random bytes to `path` (streaming) and returns their sha256. */
export async function randomFile (path: string, total: number): Promise<string> {
  const hash = createHash('sha256')
  const src = randomStream(total)
  src.on('data', (c: Buffer) => hash.update(c))
  await pipeline(src, createWriteStream(path))
  return hash.digest('hex')
}

export async function sha256OfStream (stream: Readable): Promise<string> {
  const hash = createHash('sha256')
  for await (const c of stream) hash.update(c as Buffer)
  return hash.digest('hex')
}

export async function freePort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

/** Listens on a loopback port; returns the base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

export interface TusResult { url: string, documentId: string | null, version: string | null, status: number }

/** Uploads `input` with tus-js-client (the real client) and resolves with the last response's facts. */
export async function tusUpload (input: Buffer | Readable, opts: Omit<tus.UploadOptions, 'onSuccess' | 'onError'> & { onUpload?: (u: tus.Upload) => void }): Promise<TusResult> {
  return await new Promise((resolve, reject) => {
    const upload = new tus.Upload(input as Buffer, {
      retryDelays: null,
      ...opts,
      onSuccess: ({ lastResponse }) => {
        resolve({ url: upload.url ?? '', documentId: lastResponse.getHeader('Quire-Document-Id') ?? null, version: lastResponse.getHeader('Quire-Version') ?? null, status: lastResponse.getStatus() })
      },
      onError: (err) => { reject(err) },
    })
    opts.onUpload?.(upload)
    upload.start()
  })
}

/** A tus-js-client error's HTTP status (0 when there was no response). */
export function statusOf (err: unknown): number {
  return (err as { originalResponse?: { getStatus: () => number } | null }).originalResponse?.getStatus() ?? 0
}

/** Upload-Metadata as tus encodes it. */
export function metadataHeader (meta: Record<string, string>): string {
  return Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',')
}

export const fileStream = (path: string) => createReadStream(path)

/** Starts a tus-js-client upload and stops it once its first PATCH is in; resolves with its URL. */
export async function tusFirstChunk (input: Buffer, opts: Omit<tus.UploadOptions, 'onSuccess' | 'onError' | 'onChunkComplete'>): Promise<string> {
  return await new Promise((resolve, reject) => {
    const upload: tus.Upload = new tus.Upload(input, {
      retryDelays: null,
      ...opts,
      onChunkComplete: () => { upload.abort(false).then(() => resolve(upload.url ?? ''), reject) },
      onSuccess: () => { reject(new Error('the upload finished')) },
      onError: (err) => { reject(err) },
    })
    upload.start()
  })
}
