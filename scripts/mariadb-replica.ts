// A throw-away MariaDB primary and read replica on loopback, GTID replication between them, for the
// tests of DATABASE_REPLICA_URL (the shared MariaDB on 3306 is never touched). Each server is a
// `mariadbd` on a data directory `mariadb-install-db` initialises in a temp directory; everything
// (processes, directories) goes on `stop()`, and on the process's exit if a test forgot. Usable from
// the command line too (Ctrl-C stops both):
//   npx tsx scripts/mariadb-replica.ts [primaryPort replicaPort]     default 3407 3408
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'

export interface LocalServer {
  port: number
  dir: string
  /** SIGKILL, as a crash would. */
  kill: () => Promise<void>
  /** Starts it again on the same data directory. */
  start: () => Promise<void>
  /** One statement as root; the connection is closed after it. */
  query: (sql: string) => Promise<unknown>
}

export interface LocalReplication {
  primary: LocalServer
  replica: LocalServer
  /** mysql://root@127.0.0.1:<port>/<database> */
  primaryUrl: string
  replicaUrl: string
  /** The replica stops applying (it still receives): a lag that grows until `resume()`. */
  pause: () => Promise<void>
  resume: () => Promise<void>
  /** Resolves once the replica applied everything the primary has now. */
  caughtUp: (ms?: number) => Promise<void>
  stop: () => Promise<void>
}

const binary = (name: string): string => {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) {
    if (spawnSync('test', ['-x', join(dir, name)]).status === 0) return join(dir, name)
  }
  return name
}

async function until (what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function rootQuery (port: number, sql: string): Promise<unknown> {
  const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 2000 })
  try {
    return (await conn.query(sql))[0]
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
}

/*
 * Clean-up of last resort: on exit, and on SIGTERM/SIGINT (a test runner's timeout), the servers
 * still running are killed and their directories removed before the signal takes its course.
 */
const live = new Set<() => void>()
const emergencyAll = (): void => { for (const f of live) f() }
process.once('exit', emergencyAll)
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    emergencyAll()
    process.kill(process.pid, signal)
  })
}

/** A server a crashed run left on `port` (its temp directory still there): killed by its pid file, the directory removed. */
function reapStale (port: number): void {
  for (const name of readdirSync(tmpdir()).filter(n => n.startsWith(`quire-mariadb-${port}-`))) {
    const dir = join(tmpdir(), name)
    try {
      const pid = Number(readFileSync(join(dir, 'm.pid'), 'utf8').trim())
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL')
    } catch { /* no pid file, or the process is gone */ }
    rmSync(dir, { recursive: true, force: true })
  }
}

async function server (port: number, serverId: number, extra: string[]): Promise<LocalServer & { stop: () => Promise<void> }> {
  reapStale(port)
  const dir = mkdtempSync(join(tmpdir(), `quire-mariadb-${port}-`))
  const data = join(dir, 'data')
  chownSync(dir, ...ids())
  const install = spawnSync(binary('mariadb-install-db'), ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db'], { encoding: 'utf8' })
  if (install.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`)
  }
  const args = ['--no-defaults', `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 's.sock')}`,
    `--pid-file=${join(dir, 'm.pid')}`, `--log-error=${join(dir, 'error.log')}`, '--user=mysql', `--server-id=${serverId}`, '--skip-name-resolve',
    '--innodb-buffer-pool-size=64M', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci', ...extra]
  let proc: ChildProcess | null = null
  const emergency = (): void => { proc?.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
  live.add(emergency)
  const start = async (): Promise<void> => {
    if (await rootQuery(port, 'SELECT 1').then(() => true, () => false)) throw new Error(`something already listens on 127.0.0.1:${port}`)
    const p = spawn(binary('mariadbd'), args, { stdio: 'ignore' })
    proc = p
    p.once('exit', () => { if (proc === p) proc = null })
    try {
      await until(`mariadbd on ${port}`, async () => {
        if (p.exitCode !== null) throw new Error('exited')
        await rootQuery(port, 'SELECT 1')
        return true
      })
    } catch (err) {
      let log = ''
      try { log = readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000) } catch {}
      throw new Error(`mariadbd on ${port} did not start (${(err as Error).message}): ${log}`)
    }
  }
  const kill = async (): Promise<void> => {
    const p = proc
    proc = null
    if (p === null || p.exitCode !== null || p.signalCode !== null) return
    const exited = once(p, 'exit')
    p.kill('SIGKILL')
    await exited
  }
  const stop = async (): Promise<void> => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
    live.delete(emergency)
  }
  try {
    await start()
  } catch (err) {
    await stop()
    throw err
  }
  return { port, dir, kill, start, stop, query: async (sql) => await rootQuery(port, sql) }
}

/** mysql's uid and gid (mariadbd drops to it; its directory must be its own). */
function ids (): [number, number] {
  const out = spawnSync('id', ['-u', 'mysql'], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', 'mysql'], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error('no mysql user: install mariadb-server')
  return [Number(out.stdout.trim()), Number(gid.stdout.trim())]
}

/**
 * A primary on `primaryPort` (binary log, GTIDs) and a read-only replica on `replicaPort` that
 * follows it with `MASTER_USE_GTID=slave_pos`, each with an empty `database` (created on the
 * primary, replicated). Both are stopped and their directories removed by `stop()`.
 */
export async function startReplication (opts: { primaryPort?: number, replicaPort?: number, database?: string } = {}): Promise<LocalReplication> {
  const primaryPort = opts.primaryPort ?? 3407
  const replicaPort = opts.replicaPort ?? 3408
  const database = opts.database ?? 'quire'
  const servers: Array<{ stop: () => Promise<void> }> = []
  const stop = async (): Promise<void> => { await Promise.all(servers.map(async s => await s.stop())) }
  try {
    const [primary, replica] = await Promise.all([
      server(primaryPort, 1, ['--log-bin=mysql-bin', '--binlog-format=ROW']),
      server(replicaPort, 2, ['--read-only=1', '--relay-log=relay-bin']),
    ])
    servers.push(primary, replica)
    await primary.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'")
    await primary.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    await replica.query(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primaryPort}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`)
    await replica.query('START SLAVE')
    await primary.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
    const caughtUp = async (ms = 60_000): Promise<void> => {
      const rows = await primary.query('SELECT @@GLOBAL.gtid_binlog_pos AS p') as Array<{ p: string }>
      const pos = rows[0]?.p ?? ''
      await until('the replica to catch up', async () => {
        const r = await replica.query(`SELECT MASTER_GTID_WAIT('${pos.replace(/[^0-9,-]/g, '')}', 1) AS r`) as Array<{ r: number }>
        return Number(r[0]?.r) === 0
      }, ms)
    }
    await caughtUp()
    return {
      primary,
      replica,
      primaryUrl: `mysql://root@127.0.0.1:${primaryPort}/${database}`,
      replicaUrl: `mysql://root@127.0.0.1:${replicaPort}/${database}`,
      pause: async () => { await replica.query('STOP SLAVE SQL_THREAD') },
      resume: async () => { await replica.query('START SLAVE SQL_THREAD') },
      caughtUp,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [p, r] = process.argv.slice(2).map(Number)
  const rep = await startReplication({ primaryPort: p, replicaPort: r })
  console.log(`primary ${rep.primaryUrl}\nreplica ${rep.replicaUrl}\nCtrl-C stops both`)
  const bye = (): void => { rep.stop().finally(() => process.exit(0)) }
  process.once('SIGINT', bye)
  process.once('SIGTERM', bye)
}
