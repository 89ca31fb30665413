import net from 'node:net'
import type { Readable } from 'node:stream'

/**
 * A clamd client for its INSTREAM command (`zINSTREAM\0`, then chunks each prefixed with its
 * 4-byte big-endian length, then a zero length; one reply line, NUL-terminated). The object is
 * streamed as it is read, with backpressure: never held whole in memory.
 */

/** The largest INSTREAM chunk sent: small, so clamd's early refusal is read between two of them. */
const FRAME = 64 * 1024

export type ScanVerdict = { clean: true } | { clean: false, signature: string }

/** The signature a file gets when clamd refused it for its size: a file not scanned whole is not clean. */
export const SIZE_LIMIT_SIGNATURE = 'Heuristics.Limits.Exceeded.StreamMaxLength'

/**
 * clamd could not be reached, stopped answering, or failed to scan: try again later. `midStream`:
 * clamd dropped the connection while taking the object (a crash, or a StreamMaxLength below the
 * object's size whose refusal could not be read): never a reason to let the object through.
 */
export class ScannerUnavailable extends Error {
  readonly midStream: boolean
  constructor (message: string, options?: { cause?: unknown, midStream?: boolean }) {
    super(message, options)
    this.name = 'ScannerUnavailable'
    this.midStream = options?.midStream === true
  }
}

export interface ClamdClient {
  /** Streams `body` to clamd. Throws ScannerUnavailable when there is no verdict. */
  scan: (body: Readable) => Promise<ScanVerdict>
  ping: () => Promise<void>
}

/** `tcp://host:port` or `unix:///path/to/clamd.ctl` -> net.connect options. */
export function clamdAddress (url: string): net.NetConnectOpts {
  const u = new URL(url)
  if (u.protocol === 'unix:') return { path: decodeURIComponent(u.pathname) }
  if (u.protocol !== 'tcp:' || u.hostname === '') throw new Error(`CLAMD_URL must be tcp://host:port or unix:///path, not ${url}`)
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 3310) }
}

/** What a reply line means. `stream: OK`, `stream: <name> FOUND`, `INSTREAM size limit exceeded. ERROR`, `<why> ERROR`. */
export function parseReply (reply: string): ScanVerdict {
  const line = reply.replace(/\0+$/, '').trim()
  if (/^(stream: )?OK$/.test(line)) return { clean: true }
  const found = /^(?:stream: )?(.+) FOUND$/.exec(line)
  if (found?.[1] !== undefined) return { clean: false, signature: found[1] }
  if (/size limit exceeded/i.test(line)) return { clean: false, signature: SIZE_LIMIT_SIGNATURE }
  throw new ScannerUnavailable(line === '' ? 'clamd closed the connection without a verdict' : `clamd: ${line.slice(0, 300)}`)
}

/**
 * `timeoutMs`: the longest clamd may go without accepting a byte or, after the last one, without
 * answering (an idle timeout: a large file may take long in total while it keeps moving).
 */
export function clamdClient (url: string, opts: { timeoutMs: number }): ClamdClient {
  const address = clamdAddress(url)

  async function exchange (command: string, body?: Readable): Promise<string> {
    return await new Promise<string>((resolve, reject) => {
      const socket = net.connect(address)
      const reply: Buffer[] = []
      let settled = false
      let sent = 0
      // `fromSource`: reading the object failed (a storage error, not the scanner's): rethrown as it is.
      const done = (err: Error | null, text?: string, fromSource = false): void => {
        if (settled) return
        settled = true
        socket.destroy()
        if (err !== null) {
          body?.destroy()
          const hint = sent > 0 ? ` after ${sent} bytes (is its StreamMaxLength below the object's size?)` : ''
          reject(fromSource || err instanceof ScannerUnavailable ? err : new ScannerUnavailable(`clamd at ${url}: ${err.message}${hint}`, { cause: err, midStream: sent > 0 }))
        } else resolve(text ?? '')
      }
      const replied = (): string | null => {
        const all = Buffer.concat(reply)
        const end = all.indexOf(0)
        return end >= 0 ? all.subarray(0, end).toString('utf8') : null
      }
      socket.setTimeout(opts.timeoutMs, () => done(new Error(`no progress for ${opts.timeoutMs} ms (SCAN_TIMEOUT_MS)`)))
      socket.on('data', (c: Buffer) => {
        reply.push(c)
        const text = replied()
        // clamd answers early (and closes) when it refuses the stream, e.g. past StreamMaxLength.
        if (text !== null) done(null, text)
      })
      socket.on('error', (err) => {
        const text = replied()
        if (text !== null) done(null, text)
        else done(err)
      })
      socket.on('close', () => {
        const text = Buffer.concat(reply).toString('utf8')
        if (text === '' && sent > 0) done(new Error('connection closed while sending'))
        else done(null, text)
      })
      socket.on('connect', () => {
        socket.write(`z${command}\0`)
        if (body === undefined) return
        send(socket, body, (n) => { sent += n }).catch((err: Error) => done(err, undefined, true))
      })
    })
  }

  /**
   * The chunks, each after a turn of the event loop: clamd answers early and closes when it
   * refuses the stream (StreamMaxLength), and that answer must be read before a write fails.
   */
  async function send (socket: net.Socket, body: Readable, progress: (n: number) => void): Promise<void> {
    for await (const chunk of body) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer
      for (let at = 0; at < bytes.length; at += FRAME) {
        await new Promise(resolve => setImmediate(resolve))
        if (socket.destroyed) return
        const frame = bytes.subarray(at, at + FRAME)
        const header = Buffer.alloc(4)
        header.writeUInt32BE(frame.length)
        socket.write(header)
        progress(frame.length)
        if (!socket.write(frame)) await new Promise<void>(resolve => { socket.once('drain', resolve); socket.once('close', resolve) })
      }
    }
    if (!socket.destroyed) socket.write(Buffer.alloc(4))
  }

  return {
    scan: async (body) => parseReply(await exchange('INSTREAM', body)),
    ping: async () => {
      const answer = await exchange('PING')
      if (answer.replace(/\0+$/, '') !== 'PONG') throw new ScannerUnavailable(`clamd at ${url} answered PING with ${JSON.stringify(answer.slice(0, 100))}`)
    },
  }
}
