import { test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { buffer } from 'node:stream/consumers'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import sharp from 'sharp'
import type { FastifyInstance } from 'fastify'
import { S3Storage } from '../../src/storage/s3.js'
import { thumbnailKey, originalKey } from '../../src/domain/documents.js'
import { createUser } from '../helper.js'
import { startWorker } from '../helpers/processes.js'
import { eventually } from '../ingestion/helpers.js'
import { buildWith, multipart } from './helpers.js'

/**
 * A TCP proxy in front of the S3 emulator that forwards each response only up to `holdAfter`
 * bytes, then holds the connection open: whoever reads a larger object through it is stuck
 * mid-read, deterministically, however loaded the machine is.
 */
async function holdingProxy (t: { teardown: (fn: () => unknown) => void }, target: URL, holdAfter: number) {
  const sockets = new Set<net.Socket>()
  let held = 0
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream)
    let sent = 0
    upstream.on('data', (chunk: Buffer) => {
      if (sent >= holdAfter) return
      const room = holdAfter - sent
      client.write(room >= chunk.length ? chunk : chunk.subarray(0, room))
      sent += Math.min(room, chunk.length)
      if (sent >= holdAfter) { held++; upstream.pause() }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, held: () => held }
}

async function bucketKeys (app: FastifyInstance, prefix: string): Promise<string[]> {
  const s3 = app.storage as S3Storage
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))
  return (res.Contents ?? []).map(o => o.Key ?? '').sort()
}

/** A real, large PNG (20 megapixels; a few MB once compressed). */
async function bigPng (width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3
      raw[i] = x & 255
      raw[i + 1] = y & 255
      raw[i + 2] = (x ^ y) & 255
    }
  }
  return await sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer()
}

test('SIGKILL of the worker during a thumbnail job: a new worker picks it up, one thumbnail, status converges', async (t) => {
  const WIDTH = 5000
  const HEIGHT = 4000
  const app = await buildWith(t, 's3')
  const s3Endpoint = new URL(app.config.S3_ENDPOINT)
  const HOLD_AFTER = 512 * 1024
  const proxy = await holdingProxy(t, s3Endpoint, HOLD_AFTER)
  const ed = await createUser(app, 'editor')

  // A dead worker's lock expires after WORKER_LOCK_MS; stalled jobs are looked for as often.
  const worker = async (s3Url: string) => await startWorker(t, app.config, { S3_ENDPOINT: s3Url, WORKER_LOCK_MS: '2000' })

  // The first worker reads S3 through the proxy that stalls large responses.
  const [first, png] = await Promise.all([worker(proxy.url), bigPng(WIDTH, HEIGHT)])
  t.ok(png.length > 4 * HOLD_AFTER, `the image (${png.length} bytes) is much larger than what the proxy lets through`)
  const body = multipart({ filename: 'big.png', contentType: 'image/png', data: png })
  const res = await app.inject({ method: 'POST', url: '/documents', headers: { ...ed.headers, ...body.headers }, payload: body.payload })
  t.equal(res.statusCode, 201, res.body)
  const doc = res.json() as { id: string, status: string, version: number }
  t.equal(doc.status, 'processing')
  const job = await app.queues.media.getJob(`thumbnail-${doc.id}`)
  t.ok(job, 'thumbnail job queued')

  // The worker took the job and is stuck mid-way through reading the original.
  await eventually(async () => proxy.held() >= 1, 120_000, 50)
  t.equal(await job!.getState(), 'active', 'the job is active in the first worker')
  t.equal((await first.stop('SIGKILL')).signal, 'SIGKILL', 'first worker killed')

  // Nothing was produced by the dead worker; the job is still active under its (expiring) lock.
  const mid = await app.inject({ method: 'GET', url: `/documents/${doc.id}`, headers: ed.headers })
  t.equal(mid.json().status, 'processing', 'still processing after the kill')
  t.same(await bucketKeys(app, `documents/${doc.id}/`), [originalKey(doc.id)], 'no thumbnail yet')
  t.equal(await job!.getState(), 'active', 'still active: only stalled-job recovery can free it')

  // A new worker (straight to S3) recovers the stalled job and finishes it.
  await worker(app.config.S3_ENDPOINT)
  const ready = await eventually(async () => {
    const r = await app.inject({ method: 'GET', url: `/documents/${doc.id}`, headers: ed.headers })
    const d = r.json()
    return d.status !== 'processing' ? d : null
  }, 120_000, 100)
  t.equal(ready.status, 'ready', 'status converged to ready')
  t.equal(ready.version, doc.version + 1, 'processing -> ready applied exactly once')
  t.same(ready.thumbnail, { width: 256, height: 205 })
  t.match(ready.metadata, { width: WIDTH, height: HEIGHT, format: 'png' })

  t.same(await bucketKeys(app, `documents/${doc.id}/`), [originalKey(doc.id), thumbnailKey(doc.id)].sort(), 'exactly one thumbnail object next to the original')
  const thumb = await buffer(await app.storage.get(thumbnailKey(doc.id)))
  t.match(await sharp(thumb).metadata(), { format: 'webp', width: 256, height: 205 }, 'the thumbnail is a real webp')

  // State first: a job read before it completed would carry stale fields.
  const finished = await eventually(async () => await app.queues.media.getJobState(`thumbnail-${doc.id}`) === 'completed' && await app.queues.media.getJob(`thumbnail-${doc.id}`), 60_000)
  t.equal(finished.stalledCounter, 1, 'recovered through BullMQ stalled-job detection')
  t.equal(finished.attemptsStarted, 2, 'started twice: once per worker')
  t.same(finished.returnvalue, { width: 256, height: 205 })
  const counts = await app.queues.media.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed')
  t.same(counts, { completed: 1, failed: 0, active: 0, waiting: 0, delayed: 0 }, 'one completed job, nothing else in the media queue')
  t.equal(proxy.held(), 1, 'only the first worker was held')
})
