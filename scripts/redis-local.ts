// Throw-away Redis servers on loopback for the tests that need their own (the shared one on 6379 is
// never restarted): a single non-persistent server that can be restarted empty, and a three-master
// Redis Cluster. Usable from the command line too:
//   npx tsx scripts/redis-local.ts cluster up [7101 7102 7103]    start (or reuse) the cluster
//   npx tsx scripts/redis-local.ts cluster down [7101 7102 7103]  stop it (SHUTDOWN NOSAVE)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const CLUSTER_PORTS = [7101, 7102, 7103] as const

/** Sends one inline command to 127.0.0.1:port; resolves with the raw reply, or null when nothing answers. */
export async function redisCommand (port: number, command: string, ms = 1000): Promise<string | null> {
  return await new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    let out = ''
    const done = (v: string | null): void => { s.destroy(); resolve(v) }
    s.setTimeout(ms, () => done(null))
    s.once('error', () => done(null))
    s.once('connect', () => s.write(`${command}\r\n`))
    s.on('data', (d: Buffer) => {
      out += d.toString()
      // a simple reply ends at its first CRLF; a bulk reply ($n) once n bytes arrived
      const bulk = /^\$(\d+)\r\n/.exec(out)
      if (bulk === null ? out.endsWith('\r\n') : out.length >= bulk[0].length + Number(bulk[1]) + 2) done(out)
    })
  })
}

async function until (what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

export interface LocalRedis {
  port: number
  url: string
  /** SIGKILL: the process dies at once, as a crash would. */
  kill: () => Promise<void>
  /** Starts the server again with the same arguments (and the same directory). */
  start: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * A redis-server child process on 127.0.0.1:port. `persistent: false` (the default) keeps nothing
 * on disk (`--save '' --appendonly no`): a restart comes back empty. `extra` adds arguments.
 */
export async function startRedisServer (port: number, opts: { persistent?: boolean, extra?: string[], dir?: string } = {}): Promise<LocalRedis> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `quire-redis-${port}-`))
  const persistence = opts.persistent === true ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''] : ['--save', '', '--appendonly', 'no']
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...persistence, ...(opts.extra ?? [])]
  let proc: ChildProcess | null = null
  const start = async (): Promise<void> => {
    if (await redisCommand(port, 'PING') !== null) throw new Error(`something already listens on 127.0.0.1:${port}`)
    const p = spawn('redis-server', args, { stdio: 'ignore' })
    proc = p
    p.once('error', () => { proc = null })
    await until(`redis-server on ${port}`, async () => (await redisCommand(port, 'PING'))?.startsWith('+PONG') === true)
  }
  const kill = async (): Promise<void> => {
    const p = proc
    proc = null
    if (p === null || p.exitCode !== null) return
    p.kill('SIGKILL')
    await once(p, 'exit')
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    stop: async () => {
      await kill()
      if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface LocalCluster {
  nodes: LocalRedis[]
  /** `host:port,...`, the value of REDIS_CLUSTER_NODES. */
  seeds: string
  /** The port of the master that serves `key`'s slot. */
  masterOf: (key: string) => Promise<number>
  stop: () => Promise<void>
}

const clusterOk = async (port: number): Promise<boolean> => /cluster_state:ok/.test(await redisCommand(port, 'CLUSTER INFO') ?? '')

/**
 * Three `--cluster-enabled yes` masters (append-only, fsync always: a killed master restarts with
 * its data and its node id) joined by `redis-cli --cluster create`. A cluster already answering on
 * these ports is reused (and left running by `stop`).
 */
export async function startCluster (ports: readonly number[] = CLUSTER_PORTS): Promise<LocalCluster> {
  const seeds = ports.map(p => `127.0.0.1:${p}`).join(',')
  const masterOf = async (key: string): Promise<number> => {
    const slot = Number(/:(\d+)/.exec(await redisCommand(ports[0] as number, `CLUSTER KEYSLOT ${key}`) ?? '')?.[1])
    const nodes = await redisCommand(ports[0] as number, 'CLUSTER NODES') ?? ''
    for (const line of nodes.split('\n')) {
      const [, addr, flags, , , , , , ...ranges] = line.trim().split(' ')
      if (flags?.includes('master') !== true) continue
      for (const r of ranges) {
        const [a, b = a] = r.split('-').map(Number)
        if (a !== undefined && b !== undefined && slot >= a && slot <= b) return Number(/:(\d+)/.exec(addr ?? '')?.[1])
      }
    }
    throw new Error(`no master serves slot ${slot}`)
  }
  if ((await Promise.all(ports.map(clusterOk))).every(Boolean)) return { nodes: [], seeds, masterOf, stop: async () => {} }
  const nodes: LocalRedis[] = []
  // The nodes keep their directory across restarts (stop/start): it goes with the cluster's stop.
  const dirs: string[] = []
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => await n.stop()))
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const port of ports) {
      const dir = mkdtempSync(join(tmpdir(), `quire-cluster-${port}-`))
      dirs.push(dir)
      nodes.push(await startRedisServer(port, { persistent: true, dir, extra: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '3000'] }))
    }
    const made = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
    if (made.status !== 0) throw new Error(`redis-cli --cluster create failed: ${made.stdout}${made.stderr}`)
    await until('cluster_state:ok on every node', async () => (await Promise.all(ports.map(clusterOk))).every(Boolean))
  } catch (err) {
    await stopAll()
    throw err
  }
  return { nodes, seeds, masterOf, stop: stopAll }
}

if (process.argv[1]?.endsWith('redis-local.ts') === true) {
  const [what, action, ...rest] = process.argv.slice(2)
  const ports = rest.length > 0 ? rest.map(Number) : [...CLUSTER_PORTS]
  if (what !== 'cluster' || (action !== 'up' && action !== 'down')) {
    console.error('usage: tsx scripts/redis-local.ts cluster up|down [port port port]')
    process.exit(2)
  }
  if (action === 'down') {
    for (const p of ports) spawnSync('redis-cli', ['-p', String(p), 'shutdown', 'nosave'], { stdio: 'ignore' })
  } else {
    // detached from this process: the servers outlive the command
    for (const p of ports) {
      if (await redisCommand(p, 'PING') !== null) continue
      const dir = mkdtempSync(join(tmpdir(), `quire-cluster-${p}-`))
      spawnSync('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'yes', '--appendonly', 'yes', '--save', '', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '3000'])
    }
    await until('the nodes', async () => (await Promise.all(ports.map(async p => await redisCommand(p, 'PING')))).every(r => r !== null))
    if (!(await Promise.all(ports.map(clusterOk))).every(Boolean)) {
      const made = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
      if (made.status !== 0) throw new Error(`redis-cli --cluster create failed: ${made.stdout}${made.stderr}`)
      await until('cluster_state:ok', async () => (await Promise.all(ports.map(clusterOk))).every(Boolean))
    }
    console.log(`REDIS_CLUSTER_NODES=${ports.map(p => `127.0.0.1:${p}`).join(',')}`)
  }
}
