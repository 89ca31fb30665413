import { test } from 'tap'
import { newId } from '../../src/lib/ids.js'
import { AppError } from '../../src/lib/errors.js'
import { ERROR_CODES } from '../../src/lib/error-codes.js'
import { decodeIdCursor, decodeSeqCursor, encodeCursor, pageOf } from '../../src/lib/pagination.js'
import { escapeLike, isDuplicate, likeContains, likePrefix } from '../../src/lib/sql.js'
import { withTimeout } from '../../src/lib/timeout.js'

const b64 = (s: string): string => Buffer.from(s).toString('base64url')
const codeOf = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    return err instanceof AppError ? `${err.statusCode} ${err.code}` : String(err)
  }
  return 'no error'
}

test('one cursor format; the earlier formats still decode; anything else is 400 invalid_cursor', async (t) => {
  const id = newId()
  t.equal(decodeIdCursor(encodeCursor(id)), id)
  t.equal(decodeSeqCursor(encodeCursor(42)), 42)
  // users/shares (the id), documents (d:<id>), ingestions ({"i":<id>}), audit (digits)
  t.equal(decodeIdCursor(b64(id)), id)
  t.equal(decodeIdCursor(b64(`d:${id}`)), id)
  t.equal(decodeIdCursor(b64(JSON.stringify({ i: id }))), id)
  t.equal(decodeSeqCursor(b64('1234')), 1234)
  for (const bad of ['', '====', 'a', '!!', b64('d:nope'), b64('{"i":1}'), b64('{'), b64('null'), b64(`${id} `), 'A'.repeat(600), `${b64(id)}!`]) {
    t.equal(codeOf(() => decodeIdCursor(bad)), '400 invalid_cursor', JSON.stringify(bad))
  }
  for (const bad of [b64('0'), b64('-1'), b64('1.5'), b64('12345678901234567'), b64(id)]) {
    t.equal(codeOf(() => decodeSeqCursor(bad)), '400 invalid_cursor', JSON.stringify(bad))
  }
})

test('pageOf: limit + 1 rows give a page and the cursor of its last row', async (t) => {
  t.same(pageOf([3, 2, 1], 2, n => n), { items: [3, 2], nextCursor: encodeCursor(2) })
  t.same(pageOf([3, 2], 2, n => n), { items: [3, 2], nextCursor: null })
  t.same(pageOf([], 2, n => n), { items: [], nextCursor: null })
})

test('LIKE escaping, duplicate detection, timeouts', async (t) => {
  t.equal(escapeLike('50%_a\\b'), '50\\%\\_a\\\\b')
  t.equal(likeContains('a%'), '%a\\%%')
  t.equal(likePrefix('auth.'), 'auth.%')
  t.ok(isDuplicate({ code: 'ER_DUP_ENTRY' }))
  t.ok(isDuplicate({ cause: { code: 'ER_DUP_ENTRY' } }))
  t.notOk(isDuplicate(null))
  t.notOk(isDuplicate(new Error('x')))
  t.equal(await withTimeout(Promise.resolve(1), 50), 1)
  await t.rejects(withTimeout(new Promise(() => {}), 10, 'enqueue timed out'), { message: 'enqueue timed out' })
})

test('the error-code catalogue is snake_case and has no duplicate', async (t) => {
  t.equal(new Set(ERROR_CODES).size, ERROR_CODES.length)
  for (const c of ERROR_CODES) t.match(c, /^[a-z]+(_[a-z]+)*$/)
})
