import { Readable } from 'node:stream'
import { createHash, randomBytes } from 'node:crypto'
import { text, buffer } from 'node:stream/consumers'
import type { Test } from 'tap'
import { StorageNotFound, type Storage } from '../../src/storage/types.js'

/** Yields `total` pseudo-random bytes in chunks without ever holding them all. */
export function generated (total: number, chunk = 1024 * 1024, seed = 'quire'): Readable {
  let sent = 0
  let block = createHash('sha512').update(seed).digest()
  return new Readable({
    read () {
      if (sent >= total) { this.push(null); return }
      const n = Math.min(chunk, total - sent)
      const out = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i += block.length) {
        block = createHash('sha512').update(block).digest()
        block.copy(out, i, 0, Math.min(block.length, n - i))
      }
      sent += n
      this.push(out)
    },
  })
}

export async function sha256Of (stream: Readable): Promise<{ sha256: string, size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const c of stream) { h.update(c as Buffer); size += (c as Buffer).length }
  return { sha256: h.digest('hex'), size }
}

/**
 * The storage contract, run against every driver: the same assertions for local disk and S3.
 * `factory` returns a fresh, empty storage.
 */
export function storageSuite (t: Test, name: string, factory: (t: Test) => Promise<Storage>): void {
  t.test(`${name}: put, head, get, ranged get, delete`, async (t) => {
    const s = await factory(t)
    await s.check()
    const key = `documents/${randomBytes(4).toString('hex')}/original`
    const r = await s.put(key, Readable.from([Buffer.from('hello '), Buffer.from('world')]), { contentType: 'text/plain' })
    t.equal(r.size, 11)
    t.same(await s.head(key), { size: 11 })
    t.equal(await text(await s.get(key)), 'hello world')
    t.equal(await text(await s.get(key, { start: 6, end: 10 })), 'world')
    t.equal(await text(await s.get(key, { start: 0, end: 0 })), 'h')
    await s.delete(key)
    t.equal(await s.head(key), null)
    await t.rejects(s.get(key), StorageNotFound)
    await s.delete(key) // deleting a missing object is not an error
    t.equal(await s.head('documents/never/was'), null)
  })

  t.test(`${name}: an empty object`, async (t) => {
    const s = await factory(t)
    const r = await s.put('empty/x', Readable.from([]))
    t.equal(r.size, 0)
    t.same(await s.head('empty/x'), { size: 0 })
    t.equal((await buffer(await s.get('empty/x'))).length, 0)
  })

  t.test(`${name}: a large streamed object (multipart on S3) round-trips byte for byte`, async (t) => {
    const s = await factory(t)
    const total = 20 * 1024 * 1024 + 123
    const expected = await sha256Of(generated(total))
    const r = await s.put('big/one', generated(total))
    t.equal(r.size, total)
    t.same(await s.head('big/one'), { size: total })
    t.same(await sha256Of(await s.get('big/one')), expected)
    const tail = await buffer(await s.get('big/one', { start: total - 10, end: total - 1 }))
    t.equal(tail.length, 10)
    await s.delete('big/one')
  })

  t.test(`${name}: a stream failing midway leaves no object`, async (t) => {
    const s = await factory(t)
    for (const size of [100, 12 * 1024 * 1024]) {
      const src = generated(size * 2)
      let seen = 0
      const failing = new Readable({
        read () {
          const c = src.read() as Buffer | null
          if (c === null) { src.once('readable', () => this._read(0)); return }
          seen += c.length
          if (seen > size) { this.destroy(new Error('source failed')); return }
          this.push(c)
        },
      })
      await t.rejects(s.put(`fail/${size}`, failing), /source failed/)
      t.equal(await s.head(`fail/${size}`), null, `no object after failing at ${size} bytes`)
    }
  })

  t.test(`${name}: move replaces the target with the source, list pages a prefix`, async (t) => {
    const s = await factory(t)
    await s.put('stage/a', Readable.from([Buffer.from('new bytes')]))
    await s.put('final/a', Readable.from([Buffer.from('old')]))
    await s.move('stage/a', 'final/a')
    t.equal(await s.head('stage/a'), null, 'the source is gone')
    t.equal(await text(await s.get('final/a')), 'new bytes')
    await s.move('stage/a', 'final/b').then(() => t.fail('moved a missing object'), (err: unknown) => t.ok(err instanceof StorageNotFound, 'missing source: StorageNotFound'))
    t.equal(await s.head('final/b'), null)

    // Beyond CopyObject's limit, S3 copies through the process.
    if ('copyLimit' in s) {
      (s as { copyLimit: number }).copyLimit = 4
      await s.put('stage/big', Readable.from([Buffer.from('larger than four')]))
      await s.move('stage/big', 'final/big')
      t.equal(await text(await s.get('final/big')), 'larger than four')
      t.equal(await s.head('stage/big'), null)
    }

    await s.put('final/deeper/c', Readable.from([Buffer.from('c')]))
    const listed: string[] = []
    for await (const page of s.list('final/')) listed.push(...page.map(o => o.key))
    t.same(listed.sort(), ['final/a', ...('copyLimit' in s ? ['final/big'] : []), 'final/deeper/c'].sort())
    const empty: unknown[] = []
    for await (const page of s.list('nothing/')) empty.push(...page)
    t.same(empty, [])
  })

  t.test(`${name}: copy leaves the source, replaces the target; sweepPartials removes only old leftovers`, async (t) => {
    const s = await factory(t)
    await s.put('src/a', Readable.from([Buffer.from('copied bytes')]))
    await s.put('dst/a', Readable.from([Buffer.from('old')]))
    await s.copy('src/a', 'dst/a')
    t.equal(await text(await s.get('dst/a')), 'copied bytes')
    t.equal(await text(await s.get('src/a')), 'copied bytes', 'the source stays')
    await s.copy('src/missing', 'dst/b').then(() => t.fail('copied a missing object'), (err: unknown) => t.ok(err instanceof StorageNotFound, 'missing source: StorageNotFound'))
    t.equal(await s.head('dst/b'), null)
    const listed: Array<{ key: string, size: number }> = []
    for await (const page of s.list('dst/')) listed.push(...page.map(o => ({ key: o.key, size: o.size })))
    t.same(listed, [{ key: 'dst/a', size: 12 }], 'list carries sizes')
    t.equal(await s.sweepPartials(new Date()), 0, 'no leftovers of interrupted writes')
    t.equal(await text(await s.get('dst/a')), 'copied bytes', 'sweeping never touches objects')
  })

  t.test(`${name}: keys that could escape are refused`, async (t) => {
    const s = await factory(t)
    for (const bad of ['../etc/passwd', '/etc/passwd', 'a/../../b', 'a//b', '.hidden']) {
      await t.rejects(s.put(bad, Readable.from(['x'])), /invalid storage key/, bad)
    }
  })
}
