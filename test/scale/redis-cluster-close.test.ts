import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { startCluster } from '../../scripts/redis-local.js'
import { privateDatabase } from '../helper.js'

// Every Redis Cluster client Quire makes (and the ones BullMQ duplicates from them) closes and lets
// its process end: closed while still connecting, closed normally, closed after the cluster's
// nodes were stopped. Each case runs in a child process (redis-cluster-close.child.ts) that
// nothing ends but itself: a client that outlives its close (a timer, a socket, a reconnect loop)
// keeps the child alive and fails the case.
const cluster = await startCluster([7131, 7132, 7133])
t.teardown(cluster.stop)
const DATABASE_URL = await privateDatabase('cluster_close', t)

interface Outcome { code: number | null, signal: string | null, closedIn: number | null, output: string }

/** Runs the child in `mode`; `beforeClose` runs once it is READY, then it is told to close. Killed after `ms`. */
async function child (mode: string, beforeClose: () => Promise<void> = async () => {}, ms = 60_000): Promise<Outcome> {
  const proc = spawn(process.execPath, ['--import=tsx', 'test/scale/redis-cluster-close.child.ts', mode], {
    env: { ...process.env, DATABASE_URL, REDIS_CLUSTER_NODES: cluster.seeds },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  let killer: NodeJS.Timeout | null = null
  const arm = (): void => { killer = setTimeout(() => proc.kill('SIGKILL'), ms) }
  proc.stderr.on('data', (c: Buffer) => { output += c.toString() })
  proc.stdout.on('data', (c: Buffer) => {
    output += c.toString()
    if (c.toString().includes('READY')) {
      beforeClose().then(() => { arm(); proc.stdin.end('close\n') }, (err: unknown) => { output += String(err); proc.kill('SIGKILL') })
    }
  })
  if (mode === 'connecting') arm()
  const [code, signal] = await once(proc, 'exit') as [number | null, string | null]
  if (killer !== null) clearTimeout(killer)
  const closed = /CLOSED (\d+)/.exec(output)
  return { code, signal, closedIn: closed === null ? null : Number(closed[1]), output }
}

const check = (t: Test, o: Outcome, what: string): void => {
  t.not(o.closedIn, null, `${what}: every close resolved`)
  t.ok((o.closedIn ?? Infinity) < 30_000, `${what}: within 30 s (${String(o.closedIn)} ms)`)
  t.equal(o.signal, null, `${what}: the process ended on its own, not killed after 60 s`)
  t.equal(o.code, 0, `${what}: exit code 0`)
  if (o.code !== 0 || o.closedIn === null) t.comment(o.output.slice(-3000))
}

t.test('closed right after creation, while connecting: the clients end and the process exits', async (t) => {
  for (let i = 1; i <= 3; i++) check(t, await child('connecting'), `run ${i}`)
})

t.test('an API, a worker instance and its workers closed normally: the process exits', async (t) => {
  check(t, await child('apps'), 'nodes up')
})

t.test('the same, closed after every node of the cluster was stopped: the process exits', async (t) => {
  check(t, await child('apps', cluster.stop), 'nodes down')
})
