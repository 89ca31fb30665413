// issue 24: the clamd INSTREAM client against a real clamd (scripts/clamd.mjs, EICAR test signature only).
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { clamdClient, parseReply, ScannerUnavailable, SIZE_LIMIT_SIGNATURE } from '../../src/scanning/clamd.js'
import { EICAR, startClamd } from '../../scripts/clamd.mjs'
import { generated } from '../documents/storage-suite.js'

/** Ports reserved for the scanning tests: 7310-7319 (this file: 7311, 7312, 7318). */
const PORT = 7311
const LIMITED_PORT = 7312
const SILENT_PORT = 7318

t.test('parseReply: OK, FOUND, the size limit, errors', async (t) => {
  t.same(parseReply('stream: OK\0'), { clean: true })
  t.same(parseReply('stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0'), { clean: false, signature: 'Eicar-Test-Signature.UNOFFICIAL' })
  t.same(parseReply('INSTREAM size limit exceeded. ERROR\0'), { clean: false, signature: SIZE_LIMIT_SIGNATURE }, 'a file not scanned whole is not clean')
  t.throws(() => parseReply('stream: Can\'t allocate memory ERROR\0'), ScannerUnavailable)
  t.throws(() => parseReply(''), ScannerUnavailable)
})

t.test('a real clamd: EICAR found, clean passes, a multi-MB stream scans, PING', async (t) => {
  const clamd = await startClamd({ port: PORT })
  t.teardown(clamd.stop)
  t.ok(clamd.startedInMs < 30_000, `clamd with the one-signature database started in ${clamd.startedInMs} ms`)
  const client = clamdClient(clamd.url, { timeoutMs: 30_000 })
  await client.ping()
  t.same(await client.scan(Readable.from([Buffer.from(EICAR)])), { clean: false, signature: 'Eicar-Test-Signature.UNOFFICIAL' })
  // The EICAR string split over chunks: clamd reassembles the stream.
  t.same(await client.scan(Readable.from([Buffer.from(EICAR.slice(0, 10)), Buffer.from(EICAR.slice(10))])), { clean: false, signature: 'Eicar-Test-Signature.UNOFFICIAL' })
  t.same(await client.scan(Readable.from([Buffer.from('just text')])), { clean: true })
  t.same(await client.scan(Readable.from([])), { clean: true }, 'an empty object')
  // 24 MiB generated on the fly (never held whole), in 1 MiB chunks.
  let read = 0
  const big = generated(24 * 1024 * 1024)
  big.on('data', (c: Buffer) => { read += c.length })
  t.same(await client.scan(big), { clean: true })
  t.equal(read, 24 * 1024 * 1024, 'every byte went to clamd')
})

t.test('past clamd\'s StreamMaxLength: not clean (never passed unscanned)', async (t) => {
  const clamd = await startClamd({ port: LIMITED_PORT, maxBytes: 1024 * 1024 })
  t.teardown(clamd.stop)
  const client = clamdClient(clamd.url, { timeoutMs: 30_000 })
  const verdict = await client.scan(generated(6 * 1024 * 1024, 256 * 1024))
  t.equal(verdict.clean, false)
  t.match(verdict, { signature: /Limits\.Exceeded|StreamMaxLength/ })
})

t.test('no clamd: ScannerUnavailable; a clamd that never answers: the idle timeout', async (t) => {
  const down = clamdClient(`tcp://127.0.0.1:${SILENT_PORT}`, { timeoutMs: 2000 })
  await t.rejects(down.scan(Readable.from([Buffer.from('x')])), ScannerUnavailable)
  await t.rejects(down.ping(), ScannerUnavailable)

  const sockets: net.Socket[] = []
  const silent = net.createServer({ allowHalfOpen: true }, (s) => { sockets.push(s); s.resume() })
  silent.listen(SILENT_PORT, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { sockets.forEach(s => s.destroy()); silent.close() })
  const slow = clamdClient(`tcp://127.0.0.1:${SILENT_PORT}`, { timeoutMs: 300 })
  const err = await slow.scan(Readable.from([Buffer.from('x')])).catch((e: unknown) => e)
  t.ok(err instanceof ScannerUnavailable)
  t.match((err as Error).message, /SCAN_TIMEOUT_MS/)
})

t.test('CLAMD_URL forms', async (t) => {
  t.throws(() => clamdClient('http://127.0.0.1:3310', { timeoutMs: 1000 }), /tcp:\/\/host:port/)
  t.doesNotThrow(() => clamdClient('unix:///run/clamav/clamd.ctl', { timeoutMs: 1000 }))
})
