import { test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../src/build.js'
import { createUser, testConfig, testPrefix, testTempDir } from './helper.js'
import { processEnv, spawnEntry, startWorker, waitForHttp } from './helpers/processes.js'
import { freePort } from './ingestion/helpers.js'

const body = async (req: IncomingMessage): Promise<string> => {
  let s = ''
  for await (const c of req) s += String(c)
  return s
}

test('2 API + 2 worker processes on shared MySQL/Redis/storage', { timeout: 240000 }, async (t) => {
  // The ingestion backend: counts every dispatch per ingestion id (it must be exactly one each).
  const dispatches = new Map<string, number>()
  const backend = createServer((req, res) => {
    body(req).then((raw) => {
      const id = (JSON.parse(raw) as { ingestionId: string }).ingestionId
      dispatches.set(id, (dispatches.get(id) ?? 0) + 1)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: 'succeeded', result: { ok: true } }))
    }).catch(() => res.destroy())
  })
  backend.listen(0, '127.0.0.1')
  await once(backend, 'listening')
  t.teardown(() => backend.close())

  const prefix = testPrefix('scale')
  const storageDir = testTempDir('scale')
  const [portA, portB] = [await freePort(), await freePort()]
  const rateMax = 3000
  const config = testConfig({ REDIS_PREFIX: prefix, STORAGE_DIR: storageDir, INGESTION_URL: `http://127.0.0.1:${(backend.address() as net.AddressInfo).port}/ingest` })
  const env = (port: number) => processEnv(config, {
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    RATE_LIMIT_MAX: String(rateMax),
    RATE_LIMIT_WINDOW: '600000',
    BCRYPT_COST: '4',
    LOG_LEVEL: 'warn',
  })
  const [apiA, apiB] = [spawnEntry('src/server.ts', env(portA), t), spawnEntry('src/server.ts', env(portB), t)]
  const A = `http://127.0.0.1:${portA}`
  const B = `http://127.0.0.1:${portB}`
  await Promise.all([waitForHttp(`${A}/health/ready`, { proc: apiA }), waitForHttp(`${B}/health/ready`, { proc: apiB }), startWorker(t, config), startWorker(t, config)])

  // Users and sessions made through an in-test app on the same DB and Redis prefix.
  const local = await buildApp(config)
  t.teardown(async () => await local.close())
  await local.ready()
  const editor = await createUser(local, 'editor')
  const auth = { authorization: `Bearer ${editor.accessToken}` }

  // Documents uploaded through both APIs.
  const docIds: string[] = []
  for (let i = 0; i < 6; i++) {
    const form = new FormData()
    form.append('title', `scale doc ${i}`)
    form.append('file', new Blob([`hello from scale test ${i}\n`], { type: 'text/plain' }), `doc-${i}.txt`)
    const r = await fetch(`${i % 2 === 0 ? A : B}/documents`, { method: 'POST', headers: auth, body: form })
    t.equal(r.status, 201, `upload ${i}`)
    docIds.push(((await r.json()) as { id: string }).id)
  }
  const seenOnOther = await fetch(`${B}/documents/${docIds[0] ?? ''}`, { headers: auth })
  t.equal(seenOnOther.status, 200, 'a document uploaded on A is served by B')

  // SSE on B while the ingestion is triggered on A.
  const trigger = await fetch(`${A}/documents/${docIds[0] ?? ''}/ingestions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })
  t.equal(trigger.status, 202)
  const first = await trigger.json() as { id: string }
  const sse = await fetch(`${B}/ingestions/${first.id}/events`, { headers: auth })
  t.equal(sse.status, 200)
  t.match(sse.headers.get('content-type') ?? '', /text\/event-stream/)
  const streamText = await Promise.race([sse.text(), sleep(20000).then(() => 'timeout')])
  t.match(streamText, /succeeded/, 'the client on B sees the final status of an ingestion triggered on A')

  // Many ingestions through both APIs: each dispatched exactly once to the backend.
  const ids = [first.id]
  for (let i = 0; i < 30; i++) {
    const doc = docIds[i % docIds.length] ?? ''
    const r = await fetch(`${i % 2 === 0 ? A : B}/documents/${doc}/ingestions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })
    t.equal(r.status, 202)
    ids.push(((await r.json()) as { id: string }).id)
  }
  const end = Date.now() + 60000
  let statuses: string[] = []
  while (Date.now() < end) {
    statuses = await Promise.all(ids.map(async id => ((await (await fetch(`${B}/ingestions/${id}`, { headers: auth })).json()) as { status: string }).status))
    if (statuses.every(s => s === 'succeeded' || s === 'failed')) break
    await sleep(300)
  }
  t.same([...new Set(statuses)], ['succeeded'], 'every ingestion succeeded')
  t.same(ids.map(id => dispatches.get(id) ?? 0), ids.map(() => 1), 'each ingestion was dispatched exactly once')

  // Logout on A is honoured by B at once.
  const logout = await fetch(`${A}/auth/logout`, { method: 'POST', headers: auth })
  t.equal(logout.status, 204)
  const after = await fetch(`${B}/auth/me`, { headers: auth })
  t.equal(after.status, 401)
  t.equal(((await after.json()) as { code: string }).code, 'token_revoked')

  // The rate limit holds across both processes (same client IP, shared Redis counters):
  // after A says R requests remain, exactly R more get through, alternating A and B, then 429.
  // They ask for a small answer (401 without a token: the limit counts before authentication), not
  // the OpenAPI document: thousands of those took most of this test's time on a loaded machine.
  const probe = await fetch(`${A}/auth/me`)
  await probe.arrayBuffer()
  const remaining = Number(probe.headers.get('x-ratelimit-remaining'))
  t.ok(remaining > 0 && remaining < rateMax, `remaining ${remaining} of ${rateMax}`)
  let okCount = 0
  let limitedAt = -1
  for (let i = 0; i < remaining + 5; i++) {
    const r = await fetch(`${i % 2 === 0 ? B : A}/auth/me`)
    await r.arrayBuffer()
    if (r.status === 429) { limitedAt = i; break }
    okCount++
  }
  t.equal(okCount, remaining, 'exactly the remaining budget gets through across both processes')
  t.equal(limitedAt, remaining, 'then 429')
})
