/**
 * The server under test: the real app (buildApp + the env config the runner passes) plus the
 * baseline routes the benchmarks compare against, registered on the same instance before ready
 * so baseline and subject share the process, its hooks and its pinned core.
 * Only `npm run bench` starts this, against its own database and Redis prefix.
 */
import { Session } from 'node:inspector/promises'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Queue } from 'bullmq'
import { eq, sql } from 'drizzle-orm'
import { verify } from '@node-rs/bcrypt'
import { createHash } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { loadConfig } from '../src/config.js'
import { buildApp } from '../src/build.js'
import { createRedis } from '../src/redis.js'
import { documents } from '../drizzle/schema/index.js'
import { authDeps, createSession, type AccessTokenPayload } from '../src/domain/sessions.js'
import { checkSession, type Principal } from '../src/domain/auth-state.js'
import { listDocuments, readDocumentJson } from '../src/domain/documents.js'
import { hashPassword } from '../src/domain/passwords.js'
import { newId } from '../src/lib/ids.js'
import { loadDocumentFor } from '../src/domain/document-access.js'
import { unauthorized } from '../src/lib/errors.js'

const config = loadConfig(process.env)
const app = await buildApp(config)

// The raw-bcrypt baseline verifies against a hash of the configured cost (as login does after prehashing).
const RAW_PASSWORD = createHash('sha256').update('bench-password', 'utf8').digest('base64')
const rawHash = await hashPassword('bench-password', config.BCRYPT_COST)

// The raw queue.add baseline: same Redis, same prefix, its own queue so no worker ever takes its jobs.
const rawConnection = createRedis(config.REDIS_URL, { maxRetriesPerRequest: 1 })
const rawQueue = new Queue('bench-raw', { connection: rawConnection, prefix: `${config.REDIS_PREFIX}:bull` })

/** The bare add every ingestion baseline ends with: a dispatch-sized job on the bench's own queue. */
async function rawAdd (requestId: string): Promise<{ id: string | undefined }> {
  const job = await rawQueue.add('ingestion-dispatch', { ingestionId: newId(), requestId }, { removeOnComplete: true, removeOnFail: true })
  return { id: job.id }
}

const Hello = { type: 'object', properties: { hello: { type: 'string' } } } as const

async function benchRoutes (fastify: FastifyInstance): Promise<void> {
  // 1. bare hello: public, but still through every global hook (request-id, auth, rate limit, metrics, helmet)
  fastify.get('/hello', { config: { public: true }, schema: { response: { 200: Hello } } }, async () => ({ hello: 'world' }))
  // 1b. hello without the Redis-backed rate limiter, to show that hook's share
  fastify.get('/hello-no-rl', { config: { public: true, rateLimit: false }, schema: { response: { 200: Hello } } }, async () => ({ hello: 'world' }))

  // 2. JWT verify only (no revocation check)
  fastify.get('/jwt', { config: { public: true } }, async (request) => {
    const m = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')
    if (m?.[1] === undefined) throw unauthorized()
    const p = fastify.jwt.verify<{ sub: string }>(m[1])
    return { id: p.sub }
  })

  // 3. + session check: the global auth hook (JWT + Redis MGET revocation check)
  fastify.get('/session', {}, async (request) => ({ id: request.user.id }))

  // 4. + DB read by primary key
  fastify.get<{ Params: { id: string } }>('/pk/:id', {}, async (request) => {
    const [row] = await fastify.db.select().from(documents).where(eq(documents.id, request.params.id)).limit(1)
    return { id: row?.id ?? null, title: row?.title ?? null, user: request.user.id }
  })

  // 4b. the same read as a prepared drizzle query (SQL built once): shows the query builder's share
  const byId = fastify.db.select().from(documents).where(eq(documents.id, sql.placeholder('id'))).limit(1).prepare()
  fastify.get<{ Params: { id: string } }>('/pk-prepared/:id', {}, async (request) => {
    const [row] = await byId.execute({ id: request.params.id })
    return { id: row?.id ?? null, title: row?.title ?? null, user: request.user.id }
  })

  // 4c. the same read in raw mysql2 (no query builder): the floor for one round trip
  fastify.get<{ Params: { id: string } }>('/pk-raw/:id', {}, async (request) => {
    const [rows] = await fastify.dbPool.query('SELECT * FROM documents WHERE id = ? LIMIT 1', [request.params.id]) as unknown as [Array<{ id: string, title: string }>]
    return { id: rows[0]?.id ?? null, title: rows[0]?.title ?? null, user: request.user.id }
  })

  // login baseline: just the bcrypt verify at the configured cost
  fastify.post('/bcrypt', { config: { public: true } }, async () => {
    const ok = await verify(RAW_PASSWORD, rawHash)
    if (!ok) throw unauthorized()
    return { ok }
  })

  // ingestion baseline: a bare BullMQ add with a dispatch-sized payload
  fastify.post('/enqueue', { config: { public: true } }, async (request) => {
    return await rawAdd(request.id)
  })

  // the trigger's floor, rung 1: the auth hook + the same bare add (what any authenticated enqueue costs)
  fastify.post('/enqueue-auth', {}, async (request) => {
    return await rawAdd(request.id)
  })
  // rung 2: + the trigger's document check (visibility and write access), still nothing written
  fastify.post<{ Params: { id: string } }>('/enqueue-doc/:id', {}, async (request) => {
    const access = await loadDocumentFor(fastify.db, request.user, request.params.id)
    if (access === null || !access.canWrite) throw unauthorized()
    return await rawAdd(request.id)
  })

  // upload baseline: parse the multipart body and throw the file's bytes away
  fastify.post('/discard', { config: { public: true } }, async (request) => {
    const file = await request.file()
    if (file === undefined) throw unauthorized()
    let bytes = 0
    await pipeline(file.file, new Writable({ write (chunk: Buffer, _enc, cb) { bytes += chunk.length; cb() } }))
    return { bytes }
  })

  // The floor under the upload route: what any route that stores a hashed upload must do (the
  // multipart stream, sha256 of every byte, the configured storage's put), without sniffing,
  // limits or rows. The object is deleted right after.
  fastify.post('/store-floor', { config: { public: true } }, async (request) => {
    const file = await request.file()
    if (file === undefined) throw unauthorized()
    const hash = createHash('sha256')
    let bytes = 0
    const body = new Transform({ transform (chunk: Buffer, _enc, cb) { bytes += chunk.length; hash.update(chunk); cb(null, chunk) } })
    const key = `bench/${newId()}`
    await Promise.all([pipeline(file.file, body), app.storage.put(key, body)])
    await app.storage.delete(key)
    return { bytes, sha256: hash.digest('hex') }
  })

  // helpers for the runner
  fastify.post<{ Body: { userId: string } }>('/session-for', { config: { public: true, rateLimit: false } }, async (request) => {
    const s = await createSession(fastify, request.body.userId, { ip: '127.0.0.1', userAgent: 'bench' })
    return { accessToken: s.accessToken, sessionId: s.sessionId }
  })
  // CPU profile of a window (the runner wraps one target's load run with start/stop)
  let inspector: Session | null = null
  fastify.post('/profile/start', { config: { public: true, rateLimit: false } }, async () => {
    inspector = new Session()
    inspector.connect()
    await inspector.post('Profiler.enable')
    await inspector.post('Profiler.setSamplingInterval', { interval: 200 })
    await inspector.post('Profiler.start')
    return { ok: true }
  })
  fastify.post<{ Body: { name: string } }>('/profile/stop', { config: { public: true, rateLimit: false } }, async (request) => {
    if (inspector === null) return { file: null }
    const { profile } = await inspector.post('Profiler.stop')
    inspector.disconnect()
    inspector = null
    const dir = process.env.BENCH_OUT_DIR ?? 'bench/out'
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `${request.body.name.replace(/[^\w.-]+/g, '_')}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    return { file }
  })
  fastify.post('/gc', { config: { public: true, rateLimit: false } }, async () => {
    const g = (globalThis as { gc?: () => void }).gc
    if (g !== undefined) { g(); g() }
    return process.memoryUsage()
  })
}

await rawQueue.waitUntilReady()
await app.register(benchRoutes, { prefix: '/__bench' })
app.addHook('onClose', async () => {
  await rawQueue.close()
  rawConnection.disconnect()
})
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
const port = typeof address === 'object' && address !== null ? address.port : 0

// A bare Fastify in the same process (same pinned core): default options, no plugin, no hook,
// one route. The read targets are reported against it as well as against the app's own hello.
const bare = Fastify()
bare.get('/hello', { schema: { response: { 200: Hello } } }, async () => ({ hello: 'world' }))
// The least any route that reads a MySQL row does: one primary-key query through the app's pool
// (mysql2, the driver of the design), no auth, no hook; its ratio to the bare hello bounds what
// an authenticated read can reach against that baseline.
const Row = { type: 'object', properties: { id: { type: ['string', 'null'] }, title: { type: ['string', 'null'] } } } as const
bare.get<{ Params: { id: string } }>('/row/:id', { schema: { response: { 200: Row } } }, async (request) => {
  const [rows] = await app.dbPool.query('SELECT id, title FROM documents WHERE id = ? LIMIT 1', [request.params.id]) as unknown as [Array<{ id: string, title: string }>]
  return { id: rows[0]?.id ?? null, title: rows[0]?.title ?? null }
})
// The floor under the read targets: what the reads must do, on the bare instance (no rate
// limiter, security headers, request id, logger or metrics): the bearer token verified, the
// revocation check (one Redis MGET, the app's own checkSession), then the route's own statement
// and access rule (the app's readDocumentJson / listDocuments), the JSON text sent as it is. Their
// ratios to the bare hello bound what the full routes can reach against that baseline with the
// design's components (mysql2, ioredis, @fastify/jwt).
const deps = authDeps(app)
async function floorPrincipal (authorization: string | undefined): Promise<Principal> {
  const m = /^Bearer (\S+)$/.exec(authorization ?? '')
  if (m?.[1] === undefined) throw unauthorized()
  const p = app.jwt.verify<AccessTokenPayload>(m[1])
  const res = await checkSession(deps, p.sid, p.sub)
  if (!res.ok) throw unauthorized()
  // the permission the real routes declare (the app's auth hook checks it)
  if (!res.principal.can('documents:read')) throw unauthorized()
  return res.principal
}
bare.get<{ Params: { id: string } }>('/floor/documents/:id', async (request, reply) => {
  const principal = await floorPrincipal(request.headers.authorization)
  const { json } = await readDocumentJson(app.db, principal, request.params.id)
  return await reply.type('application/json; charset=utf-8').send(json)
})
bare.get('/floor/documents', async (request, reply) => {
  const principal = await floorPrincipal(request.headers.authorization)
  const page = await listDocuments(app.db, principal, { limit: 20, trashed: false })
  return await reply.type('application/json; charset=utf-8').send(`{"items":[${page.items.join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}`)
})
await bare.listen({ port: 0, host: '127.0.0.1' })
const bareAddress = bare.server.address()
const barePort = typeof bareAddress === 'object' && bareAddress !== null ? bareAddress.port : 0
process.stdout.write(`BENCH_READY ${JSON.stringify({ port, barePort, pid: process.pid })}\n`)

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  // A normal exit lets --cpu-prof write its profile.
  Promise.allSettled([bare.close(), app.close()]).finally(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
