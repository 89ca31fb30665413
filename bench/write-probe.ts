/**
 * What a MiB of upload costs this machine's kernel and CPU outside any route, on the core the
 * server runs on: sha256 of it, and writing it to a new file in the storage directory, once on
 * pages just freed by the previous file and once on pages freed a few seconds earlier. Where the
 * VM hands freed guest memory back to its host (virtio-balloon free page reporting), the second
 * kind of write pays for the host faulting every page in again.
 * Usage: taskset -c 0 node --import=tsx bench/write-probe.ts <dir> <MiB>; prints one JSON line.
 */
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const dir = process.argv[2] ?? '.'
const mib = Number(process.argv[3] ?? 256)
const chunk = randomBytes(1024 * 1024)
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

function sha256PerMiB (): number {
  const c0 = cpuMs()
  const h = createHash('sha256')
  for (let i = 0; i < mib * 16; i++) h.update(chunk.subarray((i % 16) * 65536, (i % 16 + 1) * 65536))
  h.digest('hex')
  return (cpuMs() - c0) / mib
}

function writePerMiB (file: string): number {
  const fd = openSync(file, 'wx')
  const c0 = cpuMs()
  try {
    for (let i = 0; i < mib; i++) writeSync(fd, chunk)
  } finally {
    closeSync(fd)
  }
  return (cpuMs() - c0) / mib
}

const a = join(dir, `.write-probe-${process.pid}-a`)
const b = join(dir, `.write-probe-${process.pid}-b`)
try {
  const sha256 = sha256PerMiB()
  writePerMiB(a)
  rmSync(a)
  const reused = writePerMiB(b) // on the pages `a` just gave back
  rmSync(b)
  await sleep(4000)
  const returned = writePerMiB(a) // on pages freed 4 s ago
  console.log(JSON.stringify({ mib, sha256, writeReused: reused, writeAfterIdle: returned }))
} finally {
  rmSync(a, { force: true })
  rmSync(b, { force: true })
}
