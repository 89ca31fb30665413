import { Readable } from 'node:stream'
import {
  S3Client, GetObjectCommand, HeadObjectCommand, DeleteObjectCommand, HeadBucketCommand, PutObjectCommand,
  CopyObjectCommand, ListObjectsV2Command, type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { Config } from '../config.js'
import { assertKey, StorageNotFound, type ByteRange, type ListedObject, type ObjectInfo, type PresignAudience, type PutResult, type Storage } from './types.js'
import { contentDisposition } from '../lib/http.js'

type S3Settings = Pick<Config, 'S3_BUCKET' | 'S3_REGION' | 'S3_ENDPOINT' | 'S3_ACCESS_KEY_ID' | 'S3_SECRET_ACCESS_KEY' | 'S3_FORCE_PATH_STYLE'> & Partial<Pick<Config, 'S3_PUBLIC_ENDPOINT'>>

const isNotFound = (err: unknown): boolean => {
  const e = err as { name?: string, $metadata?: { httpStatusCode?: number } }
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404
}

/** How Quire talks to S3 (its own client and the tus store's, src/storage/tus-store.ts). */
export function s3ClientConfig (config: S3Settings): S3ClientConfig {
  const opts: S3ClientConfig = {
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    // Checksums only where S3 requires them: S3-compatible servers (and pre-signed PUTs, whose
    // body the SDK never sees) break on the SDK's default flexible checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  }
  if (config.S3_ENDPOINT !== '') opts.endpoint = config.S3_ENDPOINT
  if (config.S3_ACCESS_KEY_ID !== '') {
    opts.credentials = { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
  }
  return opts
}

/**
 * S3 (or any S3-compatible server: MinIO, R2, Ceph) through @aws-sdk/client-s3. One client per
 * instance, created with the plugin graph and destroyed on close.
 */
export class S3Storage implements Storage {
  readonly driver = 's3' as const
  readonly bucket: string
  readonly client: S3Client

  constructor (config: S3Settings) {
    this.bucket = config.S3_BUCKET
    const opts = s3ClientConfig(config)
    this.client = new S3Client(opts)
    // Object bodies go as UNSIGNED-PAYLOAD, as the SDK itself sends any streamed body: otherwise
    // SigV4 hashes every buffered 5 MiB part (lib-storage's parts are Buffers) a second time, after
    // the upload's own sha256 (13-16 % of an S3 upload's CPU). The request itself stays signed.
    this.client.middlewareStack.add(next => async (args) => {
      const body = (args.input as { Body?: unknown }).Body
      const request = args.request as { headers?: Record<string, string> } | undefined
      if (body !== undefined && typeof body !== 'string' && request?.headers !== undefined && !('x-amz-content-sha256' in request.headers)) {
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'
      }
      return await next(args)
    }, { step: 'build', name: 'quireUnsignedPayload' })
    // URLs for API clients are signed for the endpoint they can reach (the host is signed too).
    const publicEndpoint = config.S3_PUBLIC_ENDPOINT ?? ''
    this.clientSigner = publicEndpoint !== '' && publicEndpoint !== config.S3_ENDPOINT ? new S3Client({ ...opts, endpoint: publicEndpoint }) : this.client
  }

  /** Signs URLs handed to API clients; `this.client` signs those for services next to us (the ingestion backend). */
  private readonly clientSigner: S3Client

  private signer (audience: PresignAudience | undefined): S3Client {
    return audience === 'internal' ? this.client : this.clientSigner
  }

  /**
   * Streams with a multipart upload (lib-storage). The object exists only once the upload
   * completes; on any stream error the multipart upload is aborted, leaving nothing behind.
   */
  async put (key: string, body: Readable, opts: { contentType?: string } = {}): Promise<PutResult> {
    assertKey(key)
    let size = 0
    body.on('data', (chunk: Buffer) => { size += chunk.length })
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: opts.contentType ?? 'application/octet-stream' },
      // S3's smallest part: with two in flight and one filling, ~15 MiB held per upload
      queueSize: 2,
      partSize: 5 * 1024 * 1024,
      leavePartsOnError: false,
    })
    // A source error does not always reach lib-storage (it reads with an async iterator that may be
    // parked); abort explicitly so done() rejects.
    let sourceError: unknown = null
    const onError = (err: unknown) => {
      sourceError = err
      upload.abort().catch(() => {})
    }
    body.once('error', onError)
    try {
      await upload.done()
    } catch (err) {
      throw sourceError ?? err
    } finally {
      body.off('error', onError)
    }
    if (sourceError !== null) {
      await this.delete(key)
      throw sourceError
    }
    return { size }
  }

  async get (key: string, range?: ByteRange): Promise<Readable> {
    assertKey(key)
    try {
      const res = await this.client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Range: range !== undefined ? `bytes=${range.start}-${range.end}` : undefined,
      }))
      const body = res.Body
      if (body === undefined) throw new StorageNotFound(key)
      return body instanceof Readable ? body : Readable.fromWeb(body as never)
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFound(key)
      throw err
    }
  }

  async head (key: string): Promise<ObjectInfo | null> {
    assertKey(key)
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      return { size: res.ContentLength ?? 0 }
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  async delete (key: string): Promise<void> {
    assertKey(key)
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
  }

  /** CopyObject's limit; larger objects are copied through this process (get + multipart put). */
  copyLimit = 5 * 1024 ** 3

  /** CopyObject, which copies one whole version even while the source is being overwritten. */
  async copy (from: string, to: string): Promise<void> {
    assertKey(from)
    assertKey(to)
    const info = await this.head(from)
    if (info === null) throw new StorageNotFound(from)
    try {
      if (info.size <= this.copyLimit) {
        await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: `${this.bucket}/${from}` }))
      } else {
        await this.put(to, await this.get(from))
      }
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFound(from)
      throw err
    }
  }

  /**
   * A copy, then the source is deleted. A PUT landing on `from` after the copy is deleted with it
   * or stays at `from`; it never reaches `to`.
   */
  async move (from: string, to: string): Promise<void> {
    await this.copy(from, to)
    await this.delete(from)
  }

  /** Nothing to do: lib-storage aborts a failed upload; a bucket lifecycle rule ends those of a crashed process. */
  async sweepPartials (_before: Date): Promise<number> {
    return 0
  }

  async * list (prefix: string): AsyncGenerator<ListedObject[]> {
    let token: string | undefined
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: 1000 }))
      yield (res.Contents ?? []).map(o => ({ key: o.Key ?? '', size: o.Size ?? 0, modified: o.LastModified ?? new Date() }))
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  async check (): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }))
  }

  async presignGet (key: string, opts: { expiresIn: number, filename?: string, contentType?: string, audience?: PresignAudience }): Promise<string> {
    assertKey(key)
    return await getSignedUrl(this.signer(opts.audience), new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentDisposition: opts.filename !== undefined ? contentDisposition(opts.filename) : undefined,
      ResponseContentType: opts.contentType,
    }), { expiresIn: opts.expiresIn })
  }

  /** A pre-signed GetObject URL for API clients: the bytes go from S3 to the client. */
  async downloadRedirect (key: string, opts: { expiresIn: number, filename?: string, contentType?: string }): Promise<string> {
    return await this.presignGet(key, opts)
  }

  /** Content-Type and Content-Length are signed: S3 refuses a body of another size or type. */
  async presignPut (key: string, opts: { expiresIn: number, contentType?: string, contentLength?: number, audience?: PresignAudience }): Promise<{ url: string, headers: Record<string, string> }> {
    assertKey(key)
    const signable = new Set<string>()
    const headers: Record<string, string> = {}
    if (opts.contentType !== undefined) {
      signable.add('content-type')
      headers['content-type'] = opts.contentType
    }
    if (opts.contentLength !== undefined) {
      signable.add('content-length')
      headers['content-length'] = String(opts.contentLength)
    }
    const url = await getSignedUrl(this.signer(opts.audience), new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ContentType: opts.contentType,
      ContentLength: opts.contentLength,
    }), { expiresIn: opts.expiresIn, signableHeaders: signable })
    return { url, headers }
  }

  async close (): Promise<void> {
    this.client.destroy()
    if (this.clientSigner !== this.client) this.clientSigner.destroy()
  }
}
