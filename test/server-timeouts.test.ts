import net from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'

// Issue 18: slow clients could hold sockets forever (no header, idle or request timeouts).

async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as net.AddressInfo).port
}

/** Opens a raw socket; `closed` resolves with what the server sent and when it closed (ms after open). */
async function rawSocket (port: number) {
  const sock = net.connect(port, '127.0.0.1')
  await once(sock, 'connect')
  const opened = Date.now()
  let received = ''
  sock.on('data', (d: Buffer) => { received += d.toString() })
  sock.on('error', () => { /* a reset counts as closed */ })
  const closed = new Promise<{ after: number, received: string }>(resolve => sock.on('close', () => resolve({ after: Date.now() - opened, received })))
  return { sock, closed, text: () => received, isOpen: () => !sock.destroyed && sock.readyState === 'open' }
}

const timeouts = { HTTP_HEADERS_TIMEOUT_MS: 800, HTTP_IDLE_TIMEOUT_MS: 800, HTTP_REQUEST_TIMEOUT_MS: 2000 }

test('headers dripped byte by byte: the connection is closed after HTTP_HEADERS_TIMEOUT_MS', async (t) => {
  const app = await build(t, timeouts)
  const port = await listen(app)
  const c = await rawSocket(port)
  c.sock.write('GET /health HTTP/1.1\r\nHost: x\r\n')
  // a header line every 200 ms (never idle long enough for the idle timeout), never the blank line
  const drip = setInterval(() => { if (c.isOpen()) c.sock.write(`X-Slow-${Date.now()}: 1\r\n`) }, 200)
  t.teardown(() => clearInterval(drip))
  const res = await Promise.race([c.closed, sleep(6000).then(() => null)])
  clearInterval(drip)
  t.ok(res !== null, 'closed by the server')
  if (res === null) { c.sock.destroy(); return }
  t.ok(res.after < 3000, `closed after ${res.after} ms`)
  t.match(res.received, /^HTTP\/1\.1 408/, 'answered 408 Request Timeout')
})

test('a body that stalls: the connection is closed after HTTP_IDLE_TIMEOUT_MS', async (t) => {
  const app = await build(t, timeouts)
  const port = await listen(app)
  const c = await rawSocket(port)
  c.sock.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":')
  const res = await Promise.race([c.closed, sleep(6000).then(() => null)])
  t.ok(res !== null, 'closed by the server')
  if (res === null) { c.sock.destroy(); return }
  t.ok(res.after >= 600 && res.after < 3500, `closed after ${res.after} ms`)
})

test('a body trickled slower than the cap: closed after HTTP_REQUEST_TIMEOUT_MS even though never idle', async (t) => {
  const app = await build(t, timeouts)
  const port = await listen(app)
  const c = await rawSocket(port)
  c.sock.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n')
  const drip = setInterval(() => { if (c.isOpen()) c.sock.write(' ') }, 200)
  t.teardown(() => clearInterval(drip))
  const res = await Promise.race([c.closed, sleep(8000).then(() => null)])
  clearInterval(drip)
  t.ok(res !== null, 'closed by the server')
  if (res === null) { c.sock.destroy(); return }
  t.ok(res.after >= 1500 && res.after < 5000, `closed after ${res.after} ms`)
})

test('a slow body that keeps moving is served normally, the connection kept alive', async (t) => {
  const app = await build(t, timeouts)
  const port = await listen(app)
  const c = await rawSocket(port)
  const body = JSON.stringify({ email: 'nobody@example.test', password: 'wrong password' })
  c.sock.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`)
  // ~1.2 s in total, longer than the idle timeout, but a chunk every 300 ms
  const chunks = body.match(/.{1,12}/g) ?? []
  for (const chunk of chunks.slice(0, 4)) { await sleep(300); c.sock.write(chunk) }
  c.sock.write(chunks.slice(4).join(''))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), 4000)
    const check = (): void => { if (/\r\n\r\n[\s\S]*\}/.test(c.text())) { clearTimeout(timer); resolve() } }
    c.sock.on('data', check)
    check()
  })
  t.match(c.text(), /^HTTP\/1\.1 401/, 'answered')
  // the connection stays usable for a while (keep-alive) and is not cut as "idle" while waiting
  t.ok(c.isOpen(), 'kept alive after the answer')
  c.sock.destroy()
})
