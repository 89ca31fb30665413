import { request } from 'node:http'
import { randomBytes } from 'node:crypto'

/** A shared 1 MiB chunk of random bytes (after a plain-text marker), written again and again. */
const CHUNK = Buffer.concat([Buffer.from('QUIRE-BENCH-DATA\n'), randomBytes(1024 * 1024 - 17)])

export interface UploadResult { status: number, ms: number, body: string }

/**
 * Streams a multipart/form-data upload of `size` bytes (one `title` field, one `file` part) to
 * `url`, honouring backpressure: the client never holds more than one chunk.
 */
export async function streamUpload (url: string, size: number, headers: Record<string, string> = {}): Promise<UploadResult> {
  const boundary = `----quirebench${randomBytes(8).toString('hex')}`
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nbench upload\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const started = process.hrtime.bigint()
  return await new Promise<UploadResult>((resolve, reject) => {
    let settled = false
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
    }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => {
        settled = true
        resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6, body: Buffer.concat(parts).toString('utf8').slice(0, 2000) })
      })
    })
    req.on('error', (err) => { if (!settled) { settled = true; reject(err) } })
    const write = async (): Promise<void> => {
      const ok = (b: Buffer): boolean => req.write(b)
      const drained = async (): Promise<void> => await new Promise(resolve => {
        const done = (): void => { req.off('drain', done); req.off('close', done); resolve() }
        req.on('drain', done)
        req.on('close', done)
      })
      if (!ok(head)) await drained()
      let left = size
      while (left > 0 && !req.destroyed) {
        const n = Math.min(left, CHUNK.length)
        if (!ok(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) await drained()
        left -= n
      }
      req.end(tail)
    }
    write().catch((err: Error) => { if (!settled) { settled = true; reject(err) } })
  })
}
