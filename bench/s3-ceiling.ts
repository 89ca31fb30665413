/**
 * The S3 emulator's own intake, with no Quire server in the way: the least any route that stores
 * an upload in S3 could do. It sends `uploads` objects of `MiB` at once as multipart uploads,
 * each with two parts in flight as the S3 driver sends them, every part the same 5 MiB buffer
 * (nothing read, hashed, parsed or copied), through the app's own S3 client (src/storage/s3.ts:
 * same options, bodies as UNSIGNED-PAYLOAD). Run it on the server's core: what it moves is an
 * upper bound on what a route there can move into this emulator.
 * With the emulator's pid, it also reports the emulator's CPU (% of one core) over the timed part.
 * Usage: taskset -c 0 node --import=tsx bench/s3-ceiling.ts <endpoint> <bucket> <uploads> <MiB> [emulator pid];
 * prints one JSON line.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, type CompletedPart } from '@aws-sdk/client-s3'
import { S3Storage } from '../src/storage/s3.js'

const [endpoint, bucket = 'quire-bench', uploadsArg = '1', mibArg = '100', pidArg] = process.argv.slice(2)
if (endpoint === undefined || !/^https?:\/\//.test(endpoint)) {
  console.error('usage: s3-ceiling.ts <endpoint http://host:port> <bucket> <uploads> <MiB> [emulator pid]')
  process.exit(2)
}
const uploads = Number(uploadsArg)
const mib = Number(mibArg)
const PART = 5 * 1024 * 1024
const part = randomBytes(PART)
const storage = new S3Storage({
  S3_BUCKET: bucket,
  S3_REGION: 'us-east-1',
  S3_ENDPOINT: endpoint,
  S3_ACCESS_KEY_ID: 'bench',
  S3_SECRET_ACCESS_KEY: 'bench',
  S3_FORCE_PATH_STYLE: true,
})
const client = storage.client

async function upload (key: string, bytes: number): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/octet-stream' }))
  const count = Math.ceil(bytes / PART)
  const done: CompletedPart[] = []
  let next = 1
  const sender = async (): Promise<void> => {
    while (next <= count) {
      const n = next++
      const body = n < count ? part : part.subarray(0, bytes - (count - 1) * PART)
      const res = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: body }))
      done.push({ PartNumber: n, ETag: res.ETag })
    }
  }
  await Promise.all([sender(), sender()])
  done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: done } }))
}

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
/** utime + stime of another process, in ms (USER_HZ = 100 on Linux). */
const procCpuMs = (pid: string | undefined): number => {
  if (pid === undefined) return NaN
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(f[11]) + Number(f[12])) * 10
  } catch {
    return NaN
  }
}
// a warm-up upload (connections, JIT), not counted
await upload(`ceiling/${process.pid}-warm`, 2 * PART)
const c0 = cpuMs()
const e0 = procCpuMs(pidArg)
const t0 = process.hrtime.bigint()
await Promise.all(Array.from({ length: uploads }, async (_, i) => { await upload(`ceiling/${process.pid}-${i}`, mib * 1024 * 1024) }))
const secs = Number(process.hrtime.bigint() - t0) / 1e9
const cpu = cpuMs() - c0
const emulatorCpuPct = (procCpuMs(pidArg) - e0) / (secs * 10)
await storage.close()
console.log(JSON.stringify({ uploads, mib, secs, mibps: uploads * mib / secs, cpuMsPerMiB: cpu / (uploads * mib), emulatorCpuPct }))
