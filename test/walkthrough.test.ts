import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { build, privateDatabase, TEST_REDIS_URL } from './helper.js'
import { freePort, ROOT, startPython } from './ingestion/helpers.js'
import { startWorkers } from '../src/worker-runner.js'

/** The README's walkthrough: the shell block between the walkthrough markers, exactly as a reader pastes it. */
function walkthrough (): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const block = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme)
  if (block?.[1] === undefined) throw new Error('README.md has no walkthrough block')
  return block[1]
}

test('the README walkthrough works as pasted: admin, login, upload, list, download, ingestion watched live, audit', { timeout: 180000 }, async (t) => {
  // A database of its own: the walkthrough makes ada@example.com, as on a fresh machine.
  const DATABASE_URL = await privateDatabase('walk', t)

  const secret = 'walkthrough-ingestion-secret-0123456789'
  const backend = await startPython(secret)
  t.teardown(backend.close)
  const port = await freePort()
  const app = await build(t, { DATABASE_URL, INGESTION_SECRET: secret, INGESTION_URL: backend.url, PUBLIC_URL: `http://127.0.0.1:${port}`, PORT: port, HOST: '127.0.0.1' })
  await app.listen({ port, host: '127.0.0.1' })
  const workers = await startWorkers(app)
  t.teardown(workers.close)

  t.teardown(() => rmSync('/tmp/quire-hello.txt', { force: true }))
  const started = Date.now()
  const run = await new Promise<{ code: number | null, out: string, err: string }>((resolve, reject) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', walkthrough()], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', Q: `http://127.0.0.1:${port}`, DATABASE_URL, REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: app.config.REDIS_PREFIX, BCRYPT_COST: '4' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, out, err }))
  })
  t.equal(run.code, 0, 'the block ran to its end')
  if (run.code !== 0) t.comment(`${run.out}\n${run.err}`)
  const lines = run.out.split('\n')
  t.match(run.out, /admin created: [0-9a-f-]{36} <ada@example\.com>/, 'step 1: the admin')
  t.ok(lines.some(l => /^\{"id":"[0-9a-f-]{36}","title":"Hello Quire","mimeType":"text\/plain","size":\d+\}$/.test(l)), 'step 4: the listing shows the document')
  t.match(run.out, /Quire walkthrough\nA first document for the index\./, 'step 4: the download is the bytes')
  t.match(run.out, /event: status\ndata: \{[^\n]*"status":"succeeded"/, 'step 5: the stream shows the ingestion succeed')
  t.ok(lines.some(l => /^\{"status":"succeeded","attempts":1,"result":\{.*"sha256Verified":true/.test(l)), 'step 5: the result from the reference backend')
  for (const action of ['document.create', 'ingestion.trigger', 'auth.login']) t.match(run.out, new RegExp(`"action":"${action.replace('.', '\\.')}"`), `step 6: the audit log has ${action}`)
  t.ok(Date.now() - started < 60000, `the walkthrough took ${Date.now() - started} ms`)
})
