/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --profile`): self time by function and by
 * package, so a missed target can be traced to its cause. Usage: tsx bench/profile.ts <file> [top]
 * [--folded out.folded] [--skip SECONDS]: --skip leaves out the profile's first seconds (a worker's
 * start-up, say, which a whole-process --cpu-prof includes); --folded also writes the samples as folded stacks ("root;caller;callee µs" per
 * line), the input of flamegraph.pl, inferno and speedscope, for a flame graph. (The .cpuprofile
 * itself opens as a flame chart in Chrome DevTools or speedscope.)
 */
import { readFileSync, writeFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

const args = process.argv.slice(2)
const foldedAt = args.indexOf('--folded')
const foldedOut = foldedAt >= 0 ? args.splice(foldedAt, 2)[1] : undefined
const skipAt = args.indexOf('--skip')
const skipUs = skipAt >= 0 ? Number(args.splice(skipAt, 2)[1]) * 1e6 : 0
const file = args[0]
if (file === undefined || (foldedAt >= 0 && foldedOut === undefined) || !Number.isFinite(skipUs)) {
  console.error('usage: tsx bench/profile.ts <file.cpuprofile> [top] [--folded out.folded] [--skip SECONDS]')
  process.exit(1)
}
const top = Number(args[1] ?? 30)
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(p.nodes.map(n => [n.id, n]))
const parent = new Map<number, number>()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map<number, number>()
let elapsed = 0
p.samples.forEach((id, i) => {
  elapsed += p.timeDeltas[i] ?? 0
  if (elapsed >= skipUs) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
})
const total = [...self.values()].reduce((a, b) => a + b, 0)

function where (url: string): string {
  if (url === '') return '(native/v8)'
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m !== null) return m[1]!
  if (url.startsWith('node:')) return url
  const q = /\/work\/main\/(.+)$/.exec(url.replace('file://', ''))
  return q !== null ? q[1]! : url
}

const fnSelf = new Map<string, number>()
const pkgSelf = new Map<string, number>()
for (const [id, t] of self) {
  const n = byId.get(id)!
  const key = `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
  fnSelf.set(key, (fnSelf.get(key) ?? 0) + t)
  const pkg = where(n.callFrame.url).split(':')[0]!
  pkgSelf.set(pkg, (pkgSelf.get(pkg) ?? 0) + t)
}

// Inclusive time per function in our own code (src/, plugins/, routes/): where request time goes.
const incl = new Map<string, number>()
for (const [id, t] of self) {
  const seen = new Set<string>()
  let cur: number | undefined = id
  while (cur !== undefined) {
    const n: Node = byId.get(cur)!
    const w = where(n.callFrame.url)
    if (/^(src|plugins|routes|bench)\//.test(w)) {
      const key = `${n.callFrame.functionName || '(anonymous)'} ${w}:${n.callFrame.lineNumber + 1}`
      if (!seen.has(key)) { seen.add(key); incl.set(key, (incl.get(key) ?? 0) + t) }
    }
    cur = parent.get(cur)
  }
}

const pct = (t: number): string => `${(100 * t / total).toFixed(1).padStart(5)}%`
const show = (title: string, m: Map<string, number>, n: number): void => {
  console.log(`\n## ${title}`)
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(t)}  ${k}`)
}
console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled${skipUs > 0 ? ` after the first ${skipUs / 1e6} s` : ''}`)
show('self time by package', pkgSelf, 25)
show('self time by function', fnSelf, top)
show('inclusive time in our code', incl, top)

if (foldedOut !== undefined) {
  // One line per distinct stack: frames root first, joined by ';', then the sampled microseconds.
  const frame = (n: Node): string => `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`.replace(/;/g, ',')
  const lines: string[] = []
  for (const [id, t] of self) {
    const names: string[] = []
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) names.push(frame(byId.get(cur)!))
    lines.push(`${names.reverse().join(';')} ${Math.round(t)}`)
  }
  writeFileSync(foldedOut, lines.join('\n') + '\n')
  console.log(`\nfolded stacks: ${foldedOut} (${lines.length} stacks; flamegraph.pl, inferno-flamegraph or speedscope draw it)`)
}
