/** Big multipart uploads: peak RSS growth and throughput against a discard route and a floor route (local storage here, S3 in upload-s3.ts). */
import { spawnSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { streamUpload } from '../upload.js'
import { fmt, procCpu, procMem, procTimes, rssSampler, sleep, summarize } from '../lib.js'
import { log, ratioOf, sections, targetLine, targetLines, type Scenario, type ServerHandle } from '../runner/harness.js'
import { argv, here, QUICK, SERVER_CPU, UPLOAD_MB, UPLOAD_ROUNDS } from '../runner/options.js'

export interface UploadCtx { server: ServerHandle, token: string, label: string, clearStorage: () => Promise<void>, probeDir?: string, s3?: { endpoint: string, pid: number } }

interface WriteProbe { mib: number, sha256: number, writeReused: number, writeAfterIdle: number }
/** bench/write-probe.ts on the server's core: sha256 and page-cache write costs per MiB outside any route. */
function writeProbe (dir: string): WriteProbe | null {
  const r = spawnSync('taskset', ['-c', SERVER_CPU, process.execPath, '--import=tsx', join(here, 'write-probe.ts'), dir, QUICK ? '64' : '256'], { encoding: 'utf8' })
  if (r.status !== 0) { log(`  write probe failed: ${r.stderr.slice(0, 200)}`); return null }
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as WriteProbe
}

/** bench/s3-ceiling.ts on the server's core: MiB/s the S3 emulator takes in with no server in the way, and its CPU meanwhile. Null if the probe failed. */
function s3Ceiling (s3: { endpoint: string, pid: number }, uploads: number): { mibps: number, emulatorCpuPct: number } | null {
  const r = spawnSync('taskset', ['-c', SERVER_CPU, process.execPath, '--import=tsx', join(here, 's3-ceiling.ts'), s3.endpoint, 'quire-bench', String(uploads), String(UPLOAD_MB), String(s3.pid)], { encoding: 'utf8', timeout: 300_000 })
  if (r.error !== undefined || r.status !== 0) { log(`  S3 ceiling probe failed: ${r.error?.message ?? ''} ${(r.stderr ?? '').slice(-300)}`); return null }
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { mibps: number, emulatorCpuPct: number }
    return Number.isFinite(out.mibps) ? out : null
  } catch {
    log(`  S3 ceiling probe printed no result: ${r.stdout.slice(-300)}`)
    return null
  }
}

export async function uploadScenario (u: UploadCtx): Promise<void> {
  const size = UPLOAD_MB * 1024 * 1024
  const headers = { authorization: `Bearer ${u.token}` }
  const small = await streamUpload(`${u.server.base}/documents`, 1024, headers)
  if (small.status !== 201) {
    const why = small.status === 404 ? 'skipped: route not available (404)' : `skipped: probe answered ${small.status}: ${small.body.slice(0, 200)}`
    targetLine({ scenario: `100 MB upload (${u.label}): RSS growth per upload`, subject: 'POST /documents', baseline: '-', target: '≤ 32 MiB', note: why, min: -Infinity }, NaN)
    targetLine({ scenario: `100 MB upload (${u.label}): throughput vs discard`, subject: 'POST /documents', baseline: 'discard route', target: '≥ 0.80', note: why, min: 0.8 }, NaN)
    return
  }
  const wp = u.probeDir !== undefined ? writeProbe(u.probeDir) : null
  if (wp !== null) log(`  write probe (CPU ${SERVER_CPU}, ${wp.mib} MiB): sha256 ${fmt(wp.sha256, 2)} ms/MiB, write to a new file ${fmt(wp.writeReused, 2)} ms/MiB on just-freed pages, ${fmt(wp.writeAfterIdle, 2)} ms/MiB on pages freed 4 s earlier`)
  const costs: string[] = []
  let discardAt1 = NaN
  let discardGrowthAt1 = NaN
  const rowsMd: string[] = []
  let worstPerUpload = 0
  let worstNet = 0
  const allRatios: number[] = []
  const perConc: string[] = []
  const floorRatios: number[] = []
  const ceilingNotes: string[] = []
  const ceilingRatios: string[] = []
  let ceilingMax = -Infinity
  for (const conc of [1, 4, 8]) {
    type Kind = 'discard' | 'floor' | 'upload'
    const per = (): Record<Kind, number[]> => ({ discard: [], floor: [], upload: [] })
    const tp = per()
    const growth = per()
    const lat = per()
    const cpu = per()
    const sys = per()
    const bad: string[] = []
    const ceiling: number[] = []
    const ceilingDiscard: number[] = []
    const emulatorCpu: number[] = []
    let ceilingFailed = 0
    for (let r = 0; r < UPLOAD_ROUNDS; r++) {
      for (const kind of ['discard', 'floor', 'upload'] as const) {
        await fetch(`${u.server.base}/__bench/gc`, { method: 'POST' })
        await sleep(100)
        const before = procMem(u.server.pid).rss
        const sampler = rssSampler(u.server.pid, 10)
        const t0 = process.hrtime.bigint()
        const path = kind === 'discard' ? '/__bench/discard' : kind === 'floor' ? '/__bench/store-floor' : '/documents'
        const profiling = argv.profile === true && r === UPLOAD_ROUNDS - 1
        if (profiling) await fetch(`${u.server.base}/__bench/profile/start`, { method: 'POST' })
        const cpu0 = procCpu(u.server.pid)
        const sys0 = procTimes(u.server.pid).system
        const results = await Promise.all(Array.from({ length: conc }, async () => await streamUpload(`${u.server.base}${path}`, size, headers)))
        const secs = Number(process.hrtime.bigint() - t0) / 1e9
        cpu[kind].push(100 * (procCpu(u.server.pid) - cpu0) / secs)
        sys[kind].push(100 * (procTimes(u.server.pid).system - sys0) / secs)
        if (profiling) await fetch(`${u.server.base}/__bench/profile/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `upload-${u.label}-${kind}-x${conc}` }) })
        const peak = sampler.stop()
        for (const x of results) if (x.status >= 300) bad.push(`${kind} ${x.status} ${x.body.slice(0, 120)}`)
        tp[kind].push(conc * size / secs / 1024 / 1024)
        growth[kind].push((peak - before) / conc / 1024 / 1024)
        lat[kind].push(...results.map(x => x.ms))
        if (kind === 'upload') await u.clearStorage()
      }
      log(`  ${u.label} x${conc} round ${r + 1}/${UPLOAD_ROUNDS}: discard ${fmt(tp.discard.at(-1)!)} MiB/s (+${fmt(growth.discard.at(-1)!, 1)} MiB/upload), floor ${fmt(tp.floor.at(-1)!)} MiB/s, upload ${fmt(tp.upload.at(-1)!)} MiB/s (+${fmt(growth.upload.at(-1)!, 1)} MiB/upload); server CPU ${fmt(cpu.discard.at(-1)!)}% (${fmt(sys.discard.at(-1)!)} sys) / ${fmt(cpu.upload.at(-1)!)}% (${fmt(sys.upload.at(-1)!)} sys)`)
      if (u.s3 !== undefined) {
        const c = s3Ceiling(u.s3, conc)
        await u.clearStorage()
        if (c === null) {
          ceilingFailed++
        } else {
          ceiling.push(c.mibps)
          ceilingDiscard.push(tp.discard.at(-1)!)
          if (Number.isFinite(c.emulatorCpuPct)) emulatorCpu.push(c.emulatorCpuPct)
          log(`  ${u.label} x${conc} round ${r + 1}/${UPLOAD_ROUNDS}: the emulator's intake with no server (bench/s3-ceiling.ts): ${fmt(c.mibps)} MiB/s, emulator CPU ${fmt(c.emulatorCpuPct)}%`)
        }
      }
    }
    if (conc === 1) { discardAt1 = summarize(tp.discard).median; discardGrowthAt1 = summarize(growth.discard).max }
    const ratio = ratioOf(tp.upload, tp.discard)
    const floorRatio = ratioOf(tp.floor, tp.discard)
    floorRatios.push(floorRatio.median)
    const ceilingRatio = ceiling.length > 0 ? ratioOf(ceiling, ceilingDiscard) : null
    if (ceilingRatio !== null) {
      const cpuNote = emulatorCpu.length > 0 ? `, emulator ${fmt(summarize(emulatorCpu).median)} % of its core` : ''
      ceilingNotes.push(`×${conc}: ${fmt(summarize(ceiling).median)} MiB/s${cpuNote}, ${fmt(ceilingRatio.median, 2)} (${fmt(ceilingRatio.min, 2)}–${fmt(ceilingRatio.max, 2)})${ceilingFailed > 0 ? ` (${ceilingFailed} of ${UPLOAD_ROUNDS} probes failed)` : ''}`)
      ceilingMax = Math.max(ceilingMax, ceilingRatio.max)
      ceilingRatios.push(`${fmt(ceilingRatio.median, 2)} (${fmt(ceilingRatio.min, 2)}–${fmt(ceilingRatio.max, 2)})`)
    } else if (u.s3 !== undefined) {
      ceilingNotes.push(`×${conc}: every probe failed`)
      ceilingRatios.push('n/a')
      ceilingMax = Infinity
    }
    allRatios.push(ratio.median)
    perConc.push(`×${conc}: ${fmt(ratio.median, 2)}`)
    const g = summarize(growth.upload)
    worstPerUpload = Math.max(worstPerUpload, g.max)
    worstNet = Math.max(worstNet, g.max - summarize(growth.discard).median)
    const sl = (xs: number[]): string => fmt(summarize(xs).median, 0)
    // server CPU ms per MiB moved: % of a core × 10 / (MiB/s)
    const msPerMiB = (k: Kind): number => summarize(cpu[k].map((c, i) => c * 10 / tp[k][i]!)).median
    costs.push(`×${conc}: ${fmt(msPerMiB('discard'), 2)} / ${fmt(msPerMiB('floor'), 2)} / ${fmt(msPerMiB('upload'), 2)}`)
    rowsMd.push(`| ${conc} | ${fmt(summarize(tp.discard).median)} | ${fmt(summarize(tp.floor).median)} | ${fmt(floorRatio.median, 2)} (${fmt(floorRatio.min, 2)}–${fmt(floorRatio.max, 2)}) | ${fmt(summarize(tp.upload).median)} | ${fmt(ratio.median, 2)} (${fmt(ratio.min, 2)}–${fmt(ratio.max, 2)}) | ${fmt(summarize(growth.discard).max, 1)} | ${fmt(g.median, 1)} / ${fmt(g.max, 1)} | ${sl(lat.upload)} | ${fmt(summarize(cpu.discard).median)} (${fmt(summarize(sys.discard).median)} sys) / ${fmt(summarize(cpu.upload).median)} (${fmt(summarize(sys.upload).median)} sys) |${u.s3 !== undefined ? ` ${ceilingRatio !== null ? `${fmt(summarize(ceiling).median)} (${fmt(ceilingRatio.median, 2)})` : 'n/a'} |` : ''} ${bad.length > 0 ? bad.slice(0, 2).join('; ') : ''} |`)
  }
  sections.push(`### ${UPLOAD_MB} MiB multipart upload, ${u.label} storage\n\nStreamed client bodies (one 1 MiB buffer written repeatedly with backpressure), ${UPLOAD_ROUNDS} rounds per concurrency, discard route, floor route and real route alternated. The floor route (bench-only) does what any route storing a hashed upload must: the multipart stream, sha256 of every byte and the storage driver's put, no sniffing, limits or rows; its ratio to discard bounds what the real route can reach. RSS = server VmRSS sampled every 10 ms; growth = (peak − RSS after a forced GC just before the batch) / concurrent uploads.\n\n` +
    `Server CPU ms per MiB, discard / floor / upload: ${costs.join('; ')}.` +
    (ceilingNotes.length === 0 ? '' : ` The S3 emulator's own intake (bench/s3-ceiling.ts, after each round's three batches, on the server's core while the server idles, as many uploads at once, each part one reused 5 MiB buffer sent by the app's S3 client, two parts in flight per upload, nothing read, parsed or hashed; the emulator has its core to itself meanwhile, which it shares with the load generator during the route's batches): ${ceilingNotes.join('; ')} of the same round's discard route. A route storing into this emulator with the S3 driver's settings (5 MiB parts, two in flight) cannot move more than that.`) +
    (wp === null ? '' : ` Outside any route, on the server's core (bench/write-probe.ts, ${wp.mib} MiB): sha256 costs ${fmt(wp.sha256, 2)} ms/MiB; writing a new file costs ${fmt(wp.writeReused, 2)} ms/MiB on pages just freed and ${fmt(wp.writeAfterIdle, 2)} ms/MiB on pages freed 4 s earlier (this VM returns freed memory to its host, which faults it in again on the next write). At the discard route's ${fmt(discardAt1, 0)} MiB/s, 0.80 allows the route ${fmt(1000 / discardAt1 / 0.8 - 1000 / discardAt1, 2)} ms/MiB more than discard; sha256 plus the write take ${fmt(wp.sha256 + wp.writeReused, 2)}–${fmt(wp.sha256 + wp.writeAfterIdle, 2)}.`) +
    `\n\n| at once | discard MiB/s | floor MiB/s | floor ÷ discard | upload MiB/s | upload ÷ discard, median (min–max) | discard RSS growth/upload max MiB | upload RSS growth/upload median / max MiB | upload latency median ms | server CPU % discard / upload |${u.s3 !== undefined ? ' S3 emulator\'s intake with no server, MiB/s (÷ discard) |' : ''} errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${u.s3 !== undefined ? '---:|' : ''}---|\n${rowsMd.join('\n')}`)
  targetLine({ scenario: `${UPLOAD_MB} MiB upload (${u.label}): peak RSS growth per upload, 1/4/8 at once`, subject: 'POST /documents', baseline: '-', target: '≤ 32 MiB', value: { median: worstPerUpload, min: worstPerUpload, max: worstPerUpload, n: 1 }, unit: 'MiB (worst)', note: `worst net of the discard route's growth at the same concurrency: ${fmt(worstNet, 1)} MiB; the discard route, which keeps nothing, itself grew up to ${fmt(discardGrowthAt1, 1)} MiB at 1 upload: V8 frees consumed body chunks only at a scavenge, which young array buffers force once they add up to 32 MiB, whatever the young generation's size (bench/ANALYSIS.md)`, min: -Infinity }, NaN)
  targetLines[targetLines.length - 1]!.met = worstPerUpload <= 32
  const rs = summarize(allRatios)
  targetLine({ scenario: `${UPLOAD_MB} MiB upload (${u.label}): throughput vs discard`, subject: 'POST /documents', baseline: 'discard route', target: '≥ 0.80', ratio: rs, note: `per-concurrency medians ${perConc.join(', ')}; met = every concurrency ≥ 0.80; the floor route (multipart + sha256 + storage put, nothing else) reaches ${floorRatios.map(x => fmt(x, 2)).join(' / ')}${ceilingRatios.length === 0 ? '' : `; the emulator's own intake with no server at all (bench/s3-ceiling.ts: the app's S3 client sending one reused 5 MiB buffer as every part, from the server's core) reaches ${ceilingRatios.join(' / ')} of discard${ceilingMax < 0.8 ? ', under 0.80 in every round: with the S3 driver\'s settings, the bound is the emulator on this box' : ''}`}`, min: 0.8 }, rs.min)
}

export const upload: Scenario = {
  name: 'upload',
  server: 'local',
  run: async (c) => {
    await uploadScenario({
      server: c.server,
      token: c.token,
      label: 'local',
      clearStorage: async () => { for (const e of readdirSync(c.storageDir)) rmSync(join(c.storageDir, e), { recursive: true, force: true }) },
      probeDir: c.storageDir,
    })
  },
}
