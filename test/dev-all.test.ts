// issue 23: `npm run dev:all` (scripts/dev-all.mjs) starts the API, the worker and the reference
// ingestion backend; SIGINT stops all three, and when one exits the others are stopped: no orphans.
import { test, type Test } from 'tap'
import type { ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { TEST_DATABASE_URL, TEST_REDIS_URL, testPrefix, testTempDir } from './helper.js'
import { spawnProcess, waitForHttp } from './helpers/processes.js'
import { eventually, freePort } from './ingestion/helpers.js'

/** Every live descendant of `pid`, with its command line (from /proc). */
function descendants (pid: number): Map<number, string> {
  const children = new Map<number, number[]>()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)])
    } catch { /* gone */ }
  }
  const out = new Map<number, string>()
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      try { out.set(c, readFileSync(`/proc/${c}/cmdline`, 'utf8').replace(/\0/g, ' ')) } catch { continue }
      walk(c)
    }
  }
  walk(pid)
  return out
}

const alive = (pid: number): boolean => {
  try {
    // a zombie is gone for our purpose (its parent has not reaped it yet)
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch { return false }
}

/** Starts dev:all on random ports; resolves once the API is ready and the backend answers. */
async function start (t: Test): Promise<{ child: ChildProcess, pids: Map<number, string>, output: () => string }> {
  const [apiPort, ingestPort] = [await freePort(), await freePort()]
  const proc = spawnProcess(process.execPath, ['scripts/dev-all.mjs'], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: testPrefix('devall'),
      STORAGE_DIR: testTempDir('devall'),
      DATA_DIR: testTempDir('devall-index'),
      HOST: '127.0.0.1',
      PORT: String(apiPort),
      INGESTION_URL: `http://127.0.0.1:${ingestPort}/ingest`,
      JWT_SECRET: 'dev-all-test-jwt-secret-0123456789abcdef',
      STORAGE_URL_SECRET: 'dev-all-test-storage-secret-0123456789ab',
      INGESTION_SECRET: 'dev-all-test-ingestion-secret-0123',
      SHUTDOWN_GRACE_MS: '2000',
      THUMBNAIL_SWEEP_INTERVAL_MS: '0',
      FORCE_COLOR: '0',
    },
  })
  const child = proc.child
  t.teardown(() => { // if an assertion failed midway: leave nothing running
    for (const pid of [child.pid!, ...descendants(child.pid!).keys()]) { try { process.kill(pid, 'SIGKILL') } catch { } }
  })
  await waitForHttp(`http://127.0.0.1:${apiPort}/health/ready`, { proc })
  await waitForHttp(`http://127.0.0.1:${ingestPort}/health`, { proc })
  const pids = descendants(child.pid!)
  return { child, pids, output: proc.output }
}

function processesOf (t: Test, pids: Map<number, string>): Record<string, number> {
  const find = (re: RegExp) => [...pids].find(([, cmd]) => re.test(cmd) && !cmd.startsWith('/bin/sh'))?.[0]
  const found = { api: find(/src\/server\.ts/), worker: find(/src\/worker\.ts/), ingest: find(/server\.py/) }
  for (const [name, pid] of Object.entries(found)) t.ok(pid, `${name} runs under dev:all`)
  return found as Record<string, number>
}

test('SIGINT stops the API, the worker and the backend, and dev:all exits', async (t) => {
  const { child, pids, output } = await start(t)
  processesOf(t, pids)
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  child.kill('SIGINT')
  t.equal(await exited, 0, 'dev:all exits 0 on Ctrl-C')
  await eventually(async () => [...pids.keys()].every(p => !alive(p)), 30_000, 250)
  t.pass('no process left')
  t.match(output(), /\[api\] /)
  t.match(output(), /\[worker\] /)
  t.match(output(), /\[ingest\] /)
})

test('when one process exits, the other two are stopped', async (t) => {
  const { child, pids } = await start(t)
  const { ingest } = processesOf(t, pids)
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  process.kill(ingest!, 'SIGKILL')
  t.not(await exited, 0, 'dev:all reports the failure')
  await eventually(async () => [...pids.keys()].every(p => !alive(p)), 30_000, 250)
  t.pass('no process left')
})
