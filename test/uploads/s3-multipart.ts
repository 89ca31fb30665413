import { randomBytes } from 'node:crypto'
import type { Config } from '../../src/config.js'

interface Teardownable { teardown: (fn: () => unknown) => void }

interface Part { partNumber: number, body: Buffer, etag: string, lastModified: Date }
interface MultipartUpload { uploadId: string, bucket: string, key: string, parts: Map<number, Part>, initiated: Date }
interface FauxS3Store { createBucket: (name: string) => void, multipartUploads: Map<string, MultipartUpload> }
interface Reply { code: (n: number) => Reply, type: (t: string) => Reply, send: (b: string) => Reply }
interface FauxApp {
  addHook: (name: 'onRequest', fn: (req: { method: string, url: string }, reply: Reply) => Promise<unknown>) => void
  server: { address: () => { port: number } }
  listen: (o: { port: number, host: string }) => Promise<string>
  close: () => Promise<void>
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * The suite's S3 emulator (fauxqs), with the two multipart listings it lacks and @tus/s3-store
 * needs: ListParts (how much of an upload S3 holds: the resume offset) and ListMultipartUploads
 * (to show that an expired upload was aborted). Both answer from fauxqs' own multipart state (its
 * store's `multipartUploads`: the parts it really received), so nothing is made up. fauxqs does not
 * export its stores; they are loaded from its files.
 */
export async function startS3WithListParts (t: Teardownable): Promise<Partial<Config>> {
  const entry = import.meta.resolve('fauxqs') // .../fauxqs/dist/app.js
  const load = async <T>(file: string): Promise<T> => await import(new URL(file, entry).href) as T
  const { S3Store } = await load<{ S3Store: new () => FauxS3Store }>('s3/s3Store.js')
  const { SqsStore } = await load<{ SqsStore: new () => unknown }>('sqs/sqsStore.js')
  const { SnsStore } = await load<{ SnsStore: new () => unknown }>('sns/snsStore.js')
  const { buildApp } = await load<{ buildApp: (o: object) => FauxApp }>('app.js')
  const s3Store = new S3Store()
  const app = buildApp({ logger: false, stores: { sqsStore: new SqsStore(), snsStore: new SnsStore(), s3Store } })
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET') return
    const url = new URL(req.url, 'http://s3')
    const [, bucket = '', ...rest] = url.pathname.split('/')
    const key = decodeURIComponent(rest.join('/'))
    const uploadId = url.searchParams.get('uploadId')
    if (key !== '' && uploadId !== null) {
      const up = s3Store.multipartUploads.get(uploadId)
      if (up === undefined || up.key !== key) {
        return reply.code(404).type('application/xml').send('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist</Message></Error>')
      }
      const parts = [...up.parts.values()].sort((a, b) => a.partNumber - b.partNumber)
        .map(p => `<Part><PartNumber>${p.partNumber}</PartNumber><LastModified>${p.lastModified.toISOString()}</LastModified><ETag>${xml(p.etag)}</ETag><Size>${p.body.length}</Size></Part>`).join('')
      return reply.type('application/xml').send(`<?xml version="1.0" encoding="UTF-8"?><ListPartsResult><Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><UploadId>${xml(uploadId)}</UploadId><MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>${parts}</ListPartsResult>`)
    }
    if (key === '' && url.searchParams.has('uploads')) {
      const uploads = [...s3Store.multipartUploads.values()].filter(u => u.bucket === bucket)
        .map(u => `<Upload><Key>${xml(u.key)}</Key><UploadId>${xml(u.uploadId)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`).join('')
      return reply.type('application/xml').send(`<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${xml(bucket)}</Bucket><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`)
    }
    return undefined
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  const bucket = `quire-${randomBytes(4).toString('hex')}`
  s3Store.createBucket(bucket)
  const address = app.server.address()
  return {
    STORAGE_DRIVER: 's3',
    S3_ENDPOINT: `http://127.0.0.1:${address.port}`,
    S3_BUCKET: bucket,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'test',
    S3_SECRET_ACCESS_KEY: 'test',
    S3_FORCE_PATH_STYLE: true,
  }
}
