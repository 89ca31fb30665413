// tap reporter (package.json "tap"."reporter"): one line per finished test file, in a terminal and
// when piped (CI), then the failures in full and a summary. tap's own reporters either redraw a
// terminal (base, terse: unreadable in a log) or print every assertion (tap). Plain JS: tap's runner
// imports it without the tsx loader the test files get.
import { Transform } from 'node:stream'
import { Parser } from 'tap-parser'

const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`
const clock = (ms) => ms < 60_000 ? seconds(ms) : `${Math.floor(ms / 60_000)}m${String(Math.round(ms / 1000) % 60).padStart(2, '0')}s`
const color = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code, s) => color ? `\x1b[${code}m${s}\x1b[0m` : s
const diagText = (diag) => {
  if (diag == null) return ''
  const { stack, at, ...rest } = diag
  const lines = JSON.stringify(rest, null, 2).split('\n')
  if (at?.fileName) lines.push(`at ${at.fileName}:${at.lineNumber}:${at.columnNumber}`)
  if (typeof stack === 'string') lines.push(...stack.trim().split('\n').slice(0, 6))
  return lines.map((l) => `      ${l}`).join('\n')
}

export default class ProgressReporter extends Transform {
  #parser = new Parser()
  #started = Date.now()
  #file = null
  #files = []
  #totals = { pass: 0, fail: 0, skip: 0, todo: 0 }
  #held = []

  constructor () {
    super()
    const p = this.#parser
    p.on('child', (child) => {
      const file = { name: child.name, pass: 0, fail: 0, skip: 0, todo: 0, failures: [], printed: false }
      this.#file = file
      // The file's closing line reaches the parser only with the line after it: print on the
      // subtest's own end instead, so a file's line never waits for the next file.
      child.on('complete', (results) => { if (this.#file === file) this.#fileLine(file, results.ok, results.time) })
    })
    p.on('result', (res) => {
      const f = this.#file
      if (f === null || res.closingTestPoint) return
      const kind = res.todo ? 'todo' : res.skip ? 'skip' : res.ok ? 'pass' : 'fail'
      f[kind]++
      this.#totals[kind]++
      if (kind === 'fail') f.failures.push(res)
    })
    p.on('assert', (res) => this.#fileDone(res))
    // Whatever tap's before/after scripts print (the migrated database, the teardown's summary). The
    // parser reports a file's closing line only once it has seen the next line, so output arriving
    // while a file is open waits for that file's line.
    p.on('comment', (line) => { if (!/^# (Subtest|\{ total|time=)/.test(line)) this.#print(line) })
    p.on('extra', (data) => this.#print(data))
    p.on('complete', (results) => this.#summary(results))
  }

  #print (text) {
    if (this.#file === null) this.push(text)
    else this.#held.push(text)
  }

  #fileDone (res) {
    const f = this.#file ?? { name: res.name, pass: 0, fail: 0, skip: 0, todo: 0, failures: [], printed: false }
    this.#file = null
    // A file that crashed, timed out or exited non-zero fails even when every assertion passed.
    if (!f.printed || (!res.ok && !f.failed)) {
      if (!res.ok && f.failures.length === 0) f.failures.push(res)
      this.#fileLine(f, res.ok && f.fail === 0, res.time, res.skip)
    }
    for (const text of this.#held.splice(0)) this.push(text)
  }

  #fileLine (f, ok, time, skip = false) {
    f.printed = true
    f.failed = !ok
    const counts = [`${f.pass} passed`]
    if (!ok) counts.push(`${f.fail} failed`)
    if (f.skip > 0) counts.push(`${f.skip} skipped`)
    if (f.todo > 0) counts.push(`${f.todo} todo`)
    const tag = !ok ? paint('31', 'FAIL') : skip ? paint('33', 'SKIP') : paint('32', 'PASS')
    this.push(`${tag} ${f.name}  ${counts.join(', ')}  (${time != null ? seconds(time) : '?'})\n`)
    if (!ok) this.#files.push(f)
  }

  #summary (results) {
    for (const text of this.#held.splice(0)) this.push(text)
    for (const f of this.#files) {
      this.push(`\n${paint('31', 'FAIL')} ${f.name}\n`)
      for (const res of f.failures) {
        this.push(`  not ok - ${res.fullname}${res.tapError ? ` (${res.tapError})` : ''}\n`)
        const diag = diagText(res.diag)
        if (diag !== '') this.push(`${diag}\n`)
      }
      this.push(`  full TAP: .tap/test-results/${f.name}.tap\n`)
    }
    // The failures again, one line each, right above the counts: a log cut to its last lines (a CI
    // summary) still names every one of them with its message.
    const lines = this.#files.flatMap(f => f.failures.map(res => `  not ok - ${res.fullname}`))
    if (lines.length > 0) {
      this.push(`\n# ${lines.length} failed:\n`)
      for (const l of lines.slice(0, 20)) this.push(`${l.length > 300 ? `${l.slice(0, 300)}…` : l}\n`)
      if (lines.length > 20) this.push(`  … and ${lines.length - 20} more\n`)
    }
    const t = this.#totals
    // A failure outside any file (a bail-out, the before/after script) still fails the summary.
    const fail = Math.max(t.fail, results.ok ? 0 : 1)
    this.push(`\n# ${t.pass} passed, ${fail} failed, ${t.skip} skipped, ${t.todo} todo, ${clock(Date.now() - this.#started)}\n`)
  }

  _transform (chunk, _enc, cb) {
    this.#parser.write(chunk)
    cb()
  }

  _flush (cb) {
    this.#parser.end(() => cb())
  }
}
