/** Resumable (tus) uploads with tus-js-client: peak server RSS growth per concurrent upload (local storage). */
import { createWriteStream, createReadStream, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import * as tus from 'tus-js-client'
import { fmt, procMem, rssSampler, sleep, summarize } from '../lib.js'
import { log, sections, targetLine, targetLines, type Scenario } from '../runner/harness.js'
import { UPLOAD_MB, UPLOAD_ROUNDS } from '../runner/options.js'

const TARGET_MIB = 64

async function upload (endpoint: string, file: string, token: string): Promise<{ ok: boolean, error: string }> {
  return await new Promise((resolve) => {
    const u = new tus.Upload(createReadStream(file), {
      endpoint,
      headers: { authorization: `Bearer ${token}` },
      metadata: { filename: 'bench.bin', filetype: 'application/octet-stream' },
      retryDelays: null,
      onSuccess: () => { resolve({ ok: true, error: '' }) },
      onError: (err) => { resolve({ ok: false, error: String(err).slice(0, 200) }) },
    })
    u.start()
  })
}

export const uploadTus: Scenario = {
  name: 'upload-tus',
  server: 'local',
  run: async (c) => {
    const size = UPLOAD_MB * 1024 * 1024
    const dir = mkdtempSync(join(tmpdir(), 'quire-bench-tus-'))
    const file = join(dir, 'upload.bin')
    // One file of random bytes every upload reads (tus-js-client seeks in files; nothing is held whole).
    await pipeline(Readable.from((function * () { for (let i = 0; i < UPLOAD_MB; i++) yield randomBytes(1024 * 1024) })()), createWriteStream(file))
    const endpoint = `${c.server.base}/uploads/tus`
    const rows: string[] = []
    let worst = 0
    const errors: string[] = []
    try {
      for (const conc of [1, 4, 8]) {
        const growth: number[] = []
        const mibps: number[] = []
        for (let r = 0; r < UPLOAD_ROUNDS; r++) {
          await fetch(`${c.server.base}/__bench/gc`, { method: 'POST' })
          await sleep(100)
          const before = procMem(c.server.pid).rss
          const sampler = rssSampler(c.server.pid, 10)
          const t0 = process.hrtime.bigint()
          const results = await Promise.all(Array.from({ length: conc }, async () => await upload(endpoint, file, c.token)))
          const secs = Number(process.hrtime.bigint() - t0) / 1e9
          const peak = sampler.stop()
          for (const x of results) if (!x.ok) errors.push(x.error)
          growth.push((peak - before) / conc / 1024 / 1024)
          mibps.push(conc * size / secs / 1024 / 1024)
          for (const e of readdirSync(c.storageDir)) rmSync(join(c.storageDir, e), { recursive: true, force: true })
          log(`  tus x${conc} round ${r + 1}/${UPLOAD_ROUNDS}: ${fmt(mibps.at(-1)!)} MiB/s, +${fmt(growth.at(-1)!, 1)} MiB RSS per upload`)
        }
        const g = summarize(growth)
        worst = Math.max(worst, g.max)
        rows.push(`| ${conc} | ${fmt(summarize(mibps).median)} | ${fmt(g.median, 1)} / ${fmt(g.max, 1)} |`)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    sections.push(`### ${UPLOAD_MB} MiB tus upload (tus-js-client, one PATCH each), local storage\n\n${UPLOAD_ROUNDS} rounds per concurrency; the last PATCH also runs the complete (move, sha256 over the whole object, sniffing, the document row). RSS = server VmRSS sampled every 10 ms; growth = (peak − RSS after a forced GC just before the batch) / concurrent uploads.\n\n| at once | MiB/s | RSS growth/upload median / max MiB |\n|---:|---:|---:|\n${rows.join('\n')}${errors.length > 0 ? `\n\nErrors: ${errors.slice(0, 3).join('; ')}` : ''}`)
    targetLine({ scenario: `${UPLOAD_MB} MiB tus upload (local): peak RSS growth per upload, 1/4/8 at once`, subject: 'POST+PATCH /uploads/tus', baseline: '-', target: `≤ ${TARGET_MIB} MiB`, value: { median: worst, min: worst, max: worst, n: 1 }, unit: 'MiB (worst)', note: errors.length > 0 ? `${errors.length} uploads failed` : '', min: -Infinity }, NaN)
    targetLines[targetLines.length - 1]!.met = worst <= TARGET_MIB && errors.length === 0
  },
}
