import t from 'tap'
import { Readable } from 'node:stream'
import { LocalStorage } from '../src/storage/local.js'
import { S3Storage } from '../src/storage/s3.js'
import type { Storage } from '../src/storage/types.js'
import { loadConfig } from '../src/config.js'
import { storageSuite } from './documents/storage-suite.js'
import { startS3 } from './documents/s3-server.js'
import { build, testTempDir } from './helper.js'

storageSuite(t, 'local', async () => new LocalStorage(testTempDir('drv')))

storageSuite(t, 's3', async (tt) => {
  const conf = loadConfig({}, { JWT_SECRET: 'x'.repeat(32), STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16), ...await startS3(tt) })
  const s = new S3Storage(conf)
  tt.teardown(async () => await s.close())
  return s
})

t.test('s3: its pre-signed URLs are served by S3, so it offers no signed-URL verifier (no /storage routes)', async (t) => {
  const conf = loadConfig({}, { JWT_SECRET: 'x'.repeat(32), STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16), ...await startS3(t) })
  const s = new S3Storage(conf)
  t.teardown(async () => await s.close())
  t.equal((s as Storage).signedUrls, undefined)
  const s3App = await build(t, await startS3(t))
  t.equal((await s3App.inject({ method: 'GET', url: '/storage/abc.def' })).statusCode, 404, 's3: no /storage routes')
  const localApp = await build(t)
  t.equal((await localApp.inject({ method: 'GET', url: '/storage/abc.def' })).statusCode, 403, 'local: the route answers (a bad token)')
})

t.test('s3: pre-signed URLs carry the signature, expiry and signed headers', async (t) => {
  const conf = loadConfig({}, { JWT_SECRET: 'x'.repeat(32), STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16), ...await startS3(t) })
  const s = new S3Storage(conf)
  t.teardown(async () => await s.close())
  const put = await s.presignPut('up/a', { expiresIn: 600, contentType: 'text/plain', contentLength: 5 })
  const u = new URL(put.url)
  t.equal(u.searchParams.get('X-Amz-Expires'), '600')
  t.match(u.searchParams.get('X-Amz-SignedHeaders'), /content-length/)
  t.match(u.searchParams.get('X-Amz-SignedHeaders'), /content-type/)
  t.ok(u.searchParams.get('X-Amz-Signature'))
  t.notOk(u.searchParams.has('x-amz-checksum-crc32'), 'no empty-body checksum baked into the URL')
  const res = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'hello' })
  t.equal(res.status, 200)
  t.same(await s.head('up/a'), { size: 5 })
  const get = await s.presignGet('up/a', { expiresIn: 60, filename: 'résumé.txt', contentType: 'text/plain' })
  const g = new URL(get)
  t.equal(g.searchParams.get('X-Amz-Expires'), '60')
  t.match(g.searchParams.get('response-content-disposition'), /filename\*=UTF-8''r%C3%A9sum%C3%A9\.txt/)
  const body = await fetch(get)
  t.equal(body.status, 200)
  t.equal(await body.text(), 'hello')
})

t.test('s3: S3_PUBLIC_ENDPOINT signs client URLs for the public address, internal ones for S3_ENDPOINT', async (t) => {
  const s3 = await startS3(t)
  const internalEndpoint = s3.S3_ENDPOINT ?? ''
  t.ok(internalEndpoint, 'the S3 test server reports its endpoint')
  const publicEndpoint = internalEndpoint.replace('127.0.0.1', 'localhost')
  const conf = loadConfig({}, { JWT_SECRET: 'x'.repeat(32), STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16), ...s3, S3_PUBLIC_ENDPOINT: publicEndpoint })
  const s = new S3Storage(conf)
  t.teardown(async () => await s.close())
  const put = await s.presignPut('pub/a', { expiresIn: 600, contentType: 'text/plain', contentLength: 5 })
  t.equal(new URL(put.url).host, new URL(publicEndpoint).host, 'upload URL for clients uses the public endpoint')
  const res = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'hello' })
  t.equal(res.status, 200, 'and its signature holds for that host')
  const client = await s.presignGet('pub/a', { expiresIn: 60 })
  t.equal(new URL(client).host, new URL(publicEndpoint).host)
  const internal = await s.presignGet('pub/a', { expiresIn: 60, audience: 'internal' })
  t.equal(new URL(internal).host, new URL(internalEndpoint).host, 'URLs for the ingestion backend use S3_ENDPOINT')
  for (const url of [client, internal]) {
    const got = await fetch(url)
    t.equal(await got.text(), 'hello')
  }
})

t.test('s3: object bodies go as UNSIGNED-PAYLOAD (no second hash of each part), the rest of the request stays signed', async (t) => {
  const conf = loadConfig({}, { JWT_SECRET: 'x'.repeat(32), STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16), ...await startS3(t) })
  const s = new S3Storage(conf)
  t.teardown(async () => await s.close())
  const seen: Array<{ command: string, part: unknown, sha: string | undefined, auth: string | undefined }> = []
  // after the signer: what goes on the wire (a retried request is recorded again, with the same part number)
  s.client.middlewareStack.add((next, context) => async (args) => {
    const headers = (args.request as { headers: Record<string, string> }).headers
    seen.push({ command: String(context.commandName), part: (args.input as { PartNumber?: unknown }).PartNumber, sha: headers['x-amz-content-sha256'], auth: headers.authorization })
    return await next(args)
  }, { step: 'finalizeRequest', priority: 'low', name: 'testRecordHeaders' })
  const size = 11 * 1024 * 1024 + 7
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4096) data.writeUInt32LE(i, i)
  const put = await s.put('unsigned/a', Readable.from([data.subarray(0, 3_000_000), data.subarray(3_000_000)]))
  t.equal(put.size, size)
  const parts = seen.filter(x => x.command === 'UploadPartCommand')
  t.same([...new Set(parts.map(p => p.part))].sort(), [1, 2, 3], 'three parts of at most 5 MiB')
  for (const p of parts) {
    t.equal(p.sha, 'UNSIGNED-PAYLOAD')
    // the header itself is among the signed ones, so the choice cannot be changed in transit
    t.match(p.auth, /^AWS4-HMAC-SHA256 Credential=\S+, SignedHeaders=[^,]*\bx-amz-content-sha256\b[^,]*, Signature=[0-9a-f]{64}$/)
  }
  const complete = seen.find(x => x.command === 'CompleteMultipartUploadCommand')
  t.match(complete?.sha, /^[0-9a-f]{64}$/, 'the part list (no Body) keeps its payload hash')
  await s.put('unsigned/small', Readable.from([Buffer.from('small body')]))
  t.equal(seen.find(x => x.command === 'PutObjectCommand')?.sha, 'UNSIGNED-PAYLOAD', 'a single-request put too')
  const chunks: Buffer[] = []
  for await (const c of await s.get('unsigned/a')) chunks.push(c as Buffer)
  t.ok(Buffer.concat(chunks).equals(data), 'the object reads back byte for byte')
})
