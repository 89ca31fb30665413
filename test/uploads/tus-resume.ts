import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import { buildApp } from '../../src/build.js'
import { createUser, testConfig, testPrefix, testTempDir, TEST_DATABASE_URL, TEST_PLUGIN_TIMEOUT, TEST_REDIS_URL } from '../helper.js'
import { TcpProxy } from '../tcp-proxy.js'
import { fileStream, freePort, randomFile, tusUpload } from './tus-helpers.js'

const root = new URL('../..', import.meta.url).pathname
const GiB = 1024 * 1024 * 1024

async function waitReady (base: string, ms = 180_000): Promise<void> {
  const end = Date.now() + ms
  let last = 'no answer'
  while (Date.now() < end) {
    try {
      const r = await fetch(`${base}/health/ready`)
      if (r.status === 200) return
      last = `${r.status} ${await r.text()}`
    } catch (err) { last = String(err) }
    await sleep(250)
  }
  throw new Error(`${base} never became ready: ${last}`)
}

/**
 * tus-js-client uploads 1 GiB (a file written for the test, streamed, never held in memory) to API
 * process A through a TCP proxy; at ~50 % the proxy cuts every connection and comes back on the
 * same port in front of API process B. The client, retrying by itself, asks B for the offset
 * (HEAD), resumes from there and finishes on B; the document has the file's sha256. The two
 * processes share only MySQL, Redis and the storage: the lock A held while it wound down its
 * PATCH is released through Redis.
 */
export async function resumeOnAnotherProcess (t: Test, storage: Partial<Config>): Promise<void> {
  const size = GiB
  const dir = testTempDir('tus-resume')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'upload.bin')
  const sha256 = await randomFile(file, size)

  const prefix = testPrefix('tus')
  const storageDir = join(dir, 'storage')
  const [portA, portB] = [await freePort(), await freePort()]
  const env = (port: number): NodeJS.ProcessEnv => ({
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    JWT_SECRET: 'test-secret-test-secret-test-secret-0123',
    STORAGE_URL_SECRET: 'test-storage-url-secret-0123456789abcdef',
    INGESTION_SECRET: 'test-ingestion-secret-0123456789',
    INGESTION_RECOVERY_INTERVAL_MS: '0',
    STORAGE_DIR: storageDir,
    UPLOAD_MAX_BYTES: String(2 * GiB),
    BCRYPT_COST: '4',
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(Object.entries(storage).map(([k, v]) => [k, String(v)])),
  })
  const procs: ChildProcess[] = []
  t.teardown(() => { for (const p of procs) p.kill('SIGKILL') })
  for (const port of [portA, portB]) {
    procs.push(spawn(process.execPath, ['--import=tsx', 'src/server.ts'], { cwd: root, env: env(port), stdio: ['ignore', 'ignore', 'inherit'] }))
  }
  await Promise.all([waitReady(`http://127.0.0.1:${portA}`), waitReady(`http://127.0.0.1:${portB}`)])

  // A user and a session, made through an in-test app on the same database and Redis prefix.
  const local = await buildApp(testConfig({ REDIS_PREFIX: prefix, STORAGE_DIR: storageDir, ...storage }), { pluginTimeout: TEST_PLUGIN_TIMEOUT })
  t.teardown(async () => await local.close())
  await local.ready()
  const ed = await createUser(local, 'editor')

  let proxy = new TcpProxy('127.0.0.1', portA)
  const port = await proxy.start()
  t.teardown(async () => await proxy.close())
  let switched: Promise<void> | null = null
  const heads: number[] = []
  let patchesAfterCut = 0
  const started = Date.now()

  const result = await tusUpload(fileStream(file), {
    endpoint: `http://127.0.0.1:${port}/uploads/tus`,
    headers: ed.headers,
    metadata: { title: 'One GiB', filename: 'big.bin', filetype: 'application/octet-stream', sha256 },
    // The client retries by itself, through the same URL (now process B).
    retryDelays: [500, 1000, 2000, 3000, 5000, 5000, 5000, 10000],
    onProgress: (sent) => {
      if (switched === null && sent >= size / 2) {
        switched = (async () => {
          await proxy.cut()
          proxy = new TcpProxy('127.0.0.1', portB)
          await proxy.start(port)
        })()
      }
    },
    onAfterResponse: (req, res) => {
      if (switched === null) return
      if (req.getMethod() === 'HEAD') heads.push(Number(res.getHeader('Upload-Offset')))
      if (req.getMethod() === 'PATCH') patchesAfterCut++
    },
  })
  t.comment(`1 GiB through tus with a cut and a switch of process in ${Math.round((Date.now() - started) / 1000)} s`)
  t.ok(switched !== null, 'the connection was cut at ~50 %')
  t.ok(heads.length >= 1, 'the client asked process B for the offset')
  const resumedAt = heads[0] ?? 0
  t.ok(resumedAt > 0 && resumedAt < size, `resumed from the server's offset (${resumedAt} of ${size}), not from 0`)
  t.ok(patchesAfterCut >= 1, 'the rest was sent to process B')
  t.ok(result.documentId, 'the last PATCH (on B) created the document')

  const doc = await fetch(`http://127.0.0.1:${portA}/documents/${result.documentId ?? ''}`, { headers: ed.headers })
  t.equal(doc.status, 200)
  const body = await doc.json() as { size: number, sha256: string, title: string }
  t.equal(body.size, size, '1 GiB stored')
  t.equal(body.sha256, sha256, 'the sha256 the server computed over the whole object is the file\'s')
  t.equal(body.title, 'One GiB')
  // Nothing of the upload is left beside the document.
  const keys = await local.redis.keys(`${prefix}:tus:*`)
  t.same(keys, [], 'no tus lock or cached metadata left in Redis')
  if (storage.STORAGE_DRIVER !== 's3') {
    const staged = await local.storage.head(`uploads/${result.documentId ?? ''}`)
    t.equal(staged, null, 'the staging file was moved')
  }
}
