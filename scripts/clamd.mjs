#!/usr/bin/env node
/**
 * A private clamd (Debian `clamav-daemon`) for tests and development: a clamd.conf in a temp dir
 * (loopback TCP only, foreground, no local socket), a signature database holding only the EICAR
 * test signature (no download: freshclam is never run), started and waited for (PING -> PONG).
 *
 *   node scripts/clamd.mjs [--port 3310] [--max-bytes <UPLOAD_MAX_BYTES>]   # runs until Ctrl-C
 *   import { startClamd } from './scripts/clamd.mjs'                          # tests
 *
 * The size limits (StreamMaxLength, MaxFileSize, MaxScanSize) are set to --max-bytes (default
 * UPLOAD_MAX_BYTES or 1 GiB) and AlertExceedsMax is on, so a file clamd could not scan whole is
 * reported (Heuristics.Limits.Exceeded.*), never passed as clean.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The EICAR anti-virus test file: harmless, and every scanner reports it. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
export const EICAR_SIGNATURE = 'Eicar-Test-Signature'
/** clamd's own ceiling for its size limits (4 GiB - 1). */
const CLAMD_MAX = 4294967295

/** The clamd binary: $CLAMD, then PATH, then Debian's /usr/sbin/clamd; null when not installed. */
export function findClamd () {
  if (process.env.CLAMD !== undefined && process.env.CLAMD !== '') return process.env.CLAMD
  const found = spawnSync('sh', ['-c', 'command -v clamd'], { encoding: 'utf8' }).stdout.trim()
  if (found !== '') return found
  return existsSync('/usr/sbin/clamd') ? '/usr/sbin/clamd' : null
}

/** One clamd command over TCP (`z` form: NUL-terminated); resolves with the reply, without its NUL. */
export function clamdCommand (port, command, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const chunks = []
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`clamd did not answer ${command} within ${timeoutMs} ms`)))
    socket.on('connect', () => socket.end(`z${command}\0`))
    socket.on('data', c => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8').replace(/\0$/, '')))
  })
}

function writeConfig (dir, port, maxBytes) {
  const db = join(dir, 'db')
  mkdirSync(db, { recursive: true })
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  // .hdb: md5 of the whole file, its size, the name clamd reports (as `<name>.UNOFFICIAL`).
  const md5 = createHash('md5').update(EICAR).digest('hex')
  writeFileSync(join(db, 'quire-test.hdb'), `${md5}:${Buffer.byteLength(EICAR)}:${EICAR_SIGNATURE}\n`)
  const limit = Math.min(Math.max(maxBytes, 1024 * 1024), CLAMD_MAX)
  const conf = join(dir, 'clamd.conf')
  writeFileSync(conf, [
    `TCPSocket ${port}`,
    'TCPAddr 127.0.0.1',
    'Foreground yes',
    `DatabaseDirectory ${db}`,
    `TemporaryDirectory ${join(dir, 'tmp')}`,
    `StreamMaxLength ${limit}`,
    `MaxFileSize ${limit}`,
    `MaxScanSize ${limit}`,
    'AlertExceedsMax yes',
    'MaxThreads 4',
    'SelfCheck 0',
    '',
  ].join('\n'))
  return conf
}

/**
 * Starts clamd on 127.0.0.1:`port` and waits until it answers PING. Resolves with its URL (for
 * CLAMD_URL), its pid, and `stop()` (SIGTERM, then SIGKILL after 5 s; removes the temp dir unless
 * `keepDir`). Rejects when clamd is not installed or does not come up within `timeoutMs`.
 */
export async function startClamd ({ port, maxBytes = 1024 * 1024 * 1024, dir, timeoutMs = 60_000, log = () => {} } = {}) {
  const bin = findClamd()
  if (bin === null) throw new Error('clamd is not installed: apt-get install -y clamav-daemon (or set CLAMD to its path)')
  if (!Number.isInteger(port)) throw new Error('startClamd: give a port')
  const ownDir = dir === undefined
  const root = dir ?? mkdtempSync(join(tmpdir(), 'quire-clamd-'))
  const conf = writeConfig(root, port, maxBytes)
  const child = spawn(bin, ['--config-file', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const collect = (c) => { output = (output + c.toString('utf8')).slice(-8000); log(c.toString('utf8')) }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  let exited = null
  const exit = new Promise(resolve => child.once('exit', (code, signal) => { exited = { code, signal }; resolve(exited) }))

  async function stop () {
    if (exited === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => { if (exited === null) child.kill('SIGKILL') }, 5000)
      await exit
      clearTimeout(timer)
    }
    if (ownDir) rmSync(root, { recursive: true, force: true })
  }

  const started = Date.now()
  for (;;) {
    if (exited !== null) {
      await stop()
      throw new Error(`clamd exited (${exited.code ?? exited.signal}) before answering:\n${output}`)
    }
    const pong = await clamdCommand(port, 'PING', 1000).catch(() => '')
    if (pong === 'PONG') break
    if (Date.now() - started > timeoutMs) {
      await stop()
      throw new Error(`clamd did not answer PING on 127.0.0.1:${port} within ${timeoutMs} ms:\n${output}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return { url: `tcp://127.0.0.1:${port}`, port, pid: child.pid, dir: root, startedInMs: Date.now() - started, stop, exited: exit }
}

// CLI: run in the foreground until SIGINT/SIGTERM (npm run dev:all starts it this way).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`)
    return i > 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback
  }
  const port = arg('port', 3310)
  const maxBytes = arg('max-bytes', Number(process.env.UPLOAD_MAX_BYTES || 1024 * 1024 * 1024))
  try {
    const clamd = await startClamd({ port, maxBytes, log: (line) => process.stderr.write(line) })
    console.log(`clamd answering on ${clamd.url} (EICAR test signature only; started in ${clamd.startedInMs} ms)`)
    let stopping = false
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(s, () => {
        if (stopping) return
        stopping = true
        clamd.stop().then(() => process.exit(0), () => process.exit(1))
      })
    }
    const { code, signal } = await clamd.exited
    if (!stopping) {
      console.error(`clamd exited (${code ?? signal})`)
      await clamd.stop()
      process.exit(1)
    }
  } catch (err) {
    console.error(err.message)
    process.exit(1)
  }
}
