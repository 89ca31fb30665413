import { test } from 'tap'
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalStorage } from '../src/storage/local.js'
import { StorageNotFound } from '../src/storage/types.js'
import { testTempDir } from './helper.js'

test('local storage: put, head, ranged get, delete, and keys that cannot escape', async (t) => {
  const dir = testTempDir('local')
  const s = new LocalStorage(dir)
  await s.check()
  const r = await s.put('docs/ab/file-1', Readable.from([Buffer.from('hello '), Buffer.from('world')]))
  t.equal(r.size, 11)
  t.same(await s.head('docs/ab/file-1'), { size: 11 })
  t.equal(await text(await s.get('docs/ab/file-1')), 'hello world')
  t.equal(await text(await s.get('docs/ab/file-1', { start: 6, end: 10 })), 'world')
  await s.delete('docs/ab/file-1')
  t.equal(await s.head('docs/ab/file-1'), null)
  await t.rejects(s.get('docs/ab/file-1'), StorageNotFound)
  await s.delete('docs/ab/file-1') // missing is fine
  for (const bad of ['../etc/passwd', '/etc/passwd', 'a/../../b', 'a//b', '.hidden', 'a/./b', 'a\\b']) {
    await t.rejects(s.put(bad, Readable.from(['x'])), /invalid storage key/, bad)
  }
})

test('local storage: a failing stream leaves no object and no temp file', async (t) => {
  const dir = testTempDir('local')
  const s = new LocalStorage(dir)
  const body = new Readable({ read () {} })
  body.push('partial data')
  setTimeout(() => body.destroy(new Error('client went away')), 10)
  await t.rejects(s.put('docs/x', body), /client went away/)
  t.equal(await s.head('docs/x'), null)
  t.same(readdirSync(join(dir, '.tmp')), [], 'no temp files left')
})

test('local storage: a delete removes the directories it leaves empty, up to (not including) the root', async (t) => {
  const dir = testTempDir('local')
  const s = new LocalStorage(dir)
  await s.check()
  await s.put('documents/d1/original', Readable.from(['a']))
  await s.put('documents/d1/thumbnail.webp', Readable.from(['b']))
  await s.put('documents/d2/original', Readable.from(['c']))
  await s.delete('documents/d1/original')
  t.ok(existsSync(join(dir, 'documents/d1')), 'a directory that still holds an object stays')
  await s.delete('documents/d1/thumbnail.webp')
  t.notOk(existsSync(join(dir, 'documents/d1')), 'documents/d1/ is gone')
  t.ok(existsSync(join(dir, 'documents/d2/original')), 'the neighbour is untouched')
  await s.delete('documents/d2/original')
  t.notOk(existsSync(join(dir, 'documents')), 'documents/ is gone once empty')
  t.ok(existsSync(dir), 'the root stays')
  await s.delete('documents/d2/original') // missing, and so is its directory: still fine
  t.ok(existsSync(dir), 'the root stays')
  // moved into a directory just pruned: made again
  await s.put('uploads/u1', Readable.from(['moved']))
  await s.move('uploads/u1', 'documents/d3/original')
  t.equal(await text(await s.get('documents/d3/original')), 'moved')
})

test('local storage: puts racing with deletes in the same directory all land', async (t) => {
  const dir = testTempDir('local')
  const s = new LocalStorage(dir)
  await s.check()
  let survived = 0
  for (let round = 0; round < 50; round++) {
    // a delete in the directory, over and over: its prune (rmdir) lands between the put's mkdir and rename
    const state = { done: false }
    const pruner = (async () => { while (!state.done) await s.delete(`documents/r${round}/gone`) })()
    await s.put(`documents/r${round}/b`, Readable.from(['b'])).finally(() => { state.done = true })
    await pruner
    if ((await s.head(`documents/r${round}/b`))?.size === 1) survived++
  }
  t.equal(survived, 50, 'every put landed')
})

test('local storage: sweepPartials removes temp files older than the cutoff only; signed URLs are a capability', async (t) => {
  const dir = testTempDir('local')
  const s = new LocalStorage(dir)
  await s.check()
  mkdirSync(join(dir, '.tmp'), { recursive: true })
  writeFileSync(join(dir, '.tmp', 'old.part'), 'crashed write')
  const past = new Date(Date.now() - 3 * 24 * 3600 * 1000)
  utimesSync(join(dir, '.tmp', 'old.part'), past, past)
  writeFileSync(join(dir, '.tmp', 'new.part'), 'a write in flight')
  t.equal(await s.sweepPartials(new Date(Date.now() - 24 * 3600 * 1000)), 1)
  t.same(readdirSync(join(dir, '.tmp')), ['new.part'], 'the young temp file stays')

  t.equal(s.signedUrls, undefined, 'no signed URLs without a base URL and a secret')
  const signed = new LocalStorage(dir, { baseUrl: 'http://q.test', secret: 'k'.repeat(32) })
  const url = await signed.presignGet('docs/a', { expiresIn: 60 })
  const token = url.slice('http://q.test/storage/'.length)
  t.match(signed.signedUrls?.verify(token), { key: 'docs/a', method: 'GET' })
  t.equal(signed.signedUrls?.verify(token.slice(0, -2) + 'xx'), null, 'a bad signature')
})
