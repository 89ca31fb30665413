#!/usr/bin/env node
// Makes sure MySQL/MariaDB and Redis answer at the test URLs before the suite runs, and that clamd is installed.
// If one is down it tries, in order: a locally installed server, then `docker compose up -d --wait`.
// If nothing works it stops with a message saying exactly what to install or start.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'

const dbUrl = new URL(process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/quire_test')
const redisUrl = new URL(process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const isLocal = (h) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(h)

function reachable (host, port, ms = 1500) {
  return new Promise((resolve) => {
    const s = net.connect({ host: host.replace(/^\[|\]$/g, ''), port: Number(port) })
    const done = (ok) => { s.destroy(); resolve(ok) }
    s.setTimeout(ms, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

async function waitFor (host, port, seconds) {
  for (let i = 0; i < seconds * 4; i++) {
    if (await reachable(host, port, 500)) return true
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return false
}

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim()
const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status === 0

function startLocalMysql () {
  const daemon = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find(existsSync) ?? which('mariadbd') ?? which('mysqld')
  if (!daemon) return false
  console.log(`[services] starting ${daemon}`)
  spawnSync('mkdir', ['-p', '/run/mysqld'])
  spawnSync('sh', ['-c', 'chown mysql:mysql /run/mysqld 2>/dev/null || true'])
  if (!existsSync('/var/lib/mysql/mysql') && which('mariadb-install-db')) {
    run('mariadb-install-db', ['--user=mysql', '--datadir=/var/lib/mysql', '--auth-root-authentication-method=normal'])
  }
  if (which('start-stop-daemon')) return run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', daemon])
  spawnSync('sh', ['-c', `${daemon} --user=mysql >/dev/null 2>&1 &`])
  return true
}

function startLocalRedis () {
  const bin = which('redis-server')
  if (!bin) return false
  console.log('[services] starting redis-server')
  return run(bin, ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', redisUrl.port || '6379', '--save', '', '--appendonly', 'no'])
}

function dockerCompose (service) {
  if (!which('docker') || spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return false
  console.log(`[services] docker compose up -d --wait ${service}`)
  return run('docker', ['compose', 'up', '-d', '--wait', service])
}

async function ensure (name, url, defaultPort, startLocal, composeService, hint) {
  const host = url.hostname
  const port = url.port || defaultPort
  if (await reachable(host, port)) return true
  if (!isLocal(host)) {
    console.error(`[services] ${name} at ${host}:${port} is not reachable and is not local: start it, or point the URL elsewhere.`)
    return false
  }
  if (startLocal() && await waitFor(host, port, 30)) return true
  if (dockerCompose(composeService) && await waitFor(host, port, 60)) return true
  console.error(`[services] ${name} is not reachable at ${host}:${port} and could not be started.\n  ${hint}`)
  return false
}

const okDb = await ensure('MySQL/MariaDB', dbUrl, '3306', startLocalMysql, 'mysql',
  'Install and start one: `apt-get install -y mariadb-server && mariadbd-safe &` (root with an empty password on 127.0.0.1:3306), or `docker compose up -d --wait mysql`, or set TEST_DATABASE_URL.')
const okRedis = await ensure('Redis', redisUrl, '6379', startLocalRedis, 'redis',
  'Install and start one: `apt-get install -y redis-server && redis-server --daemonize yes`, or `docker compose up -d --wait redis`, or set TEST_REDIS_URL.')
// clamd is not a shared service: the scanning tests start their own (scripts/clamd.mjs) from the
// Debian package, installed here when missing and apt-get can (as root), as .ci/run does.
function ensureClamd () {
  if (which('clamd') || existsSync('/usr/sbin/clamd')) return true
  if (which('apt-get') && process.getuid?.() === 0) {
    console.log('[services] installing clamav-daemon (clamd, for the malware-scanning tests)')
    if (run('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon >/dev/null)'])) return true
  }
  console.error('[services] clamd is not installed: `apt-get install -y clamav-daemon` (the scanning tests start their own clamd; or set CLAMD to its path)')
  return false
}
const okClamd = ensureClamd()
if (!okDb || !okRedis || !okClamd) process.exit(1)
console.log(`[services] MySQL at ${dbUrl.host} and Redis at ${redisUrl.host} are up`)
