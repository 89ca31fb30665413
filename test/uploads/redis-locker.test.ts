import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { createRedis } from '../../src/redis.js'
import { RedisLocker } from '../../src/lib/redis-locker.js'
import { testPrefix, TEST_REDIS_URL } from '../helper.js'

/** Two lockers on two connections: two API processes as far as Redis can tell. */
function pair (t: { teardown: (fn: () => unknown) => void }, opts: { ttlMs?: number, acquireTimeoutMs?: number } = {}) {
  const prefix = testPrefix('lock')
  const conns = [createRedis(TEST_REDIS_URL, { enableOfflineQueue: true }), createRedis(TEST_REDIS_URL, { enableOfflineQueue: true })]
  t.teardown(async () => {
    const keys = await conns[0]!.keys(`${prefix}:*`)
    if (keys.length > 0) await conns[0]!.del(...keys)
    for (const c of conns) c.disconnect()
  })
  const keys = (id: string) => ({ lock: `${prefix}:tus:{${id}}:lock`, release: `${prefix}:tus:{${id}}:release` })
  return { prefix, a: new RedisLocker(conns[0]!, { keys, pollMs: 50, ...opts }), b: new RedisLocker(conns[1]!, { keys, pollMs: 50, ...opts }) }
}

t.test('one holder at a time; a waiter asks the holder to let go, and gets the lock once it does', async (t) => {
  const { a, b } = pair(t)
  const held = a.newLock('uploads/x')
  let asked = 0
  await held.lock(new AbortController().signal, async () => { asked++; await sleep(100); await held.unlock() })
  const events: string[] = []
  const other = b.newLock('uploads/x')
  await other.lock(new AbortController().signal, () => {})
  events.push('b got it')
  t.equal(asked, 1, 'the holder was asked once to release')
  t.same(events, ['b got it'])
  // other ids are independent
  const third = a.newLock('uploads/y')
  await third.lock(new AbortController().signal, () => {})
  await third.unlock()
  await other.unlock()
})

t.test('a waiter gives up after acquireTimeoutMs (tus answers ERR_LOCK_TIMEOUT), or when its request ends', async (t) => {
  const { a, b } = pair(t, { acquireTimeoutMs: 300 })
  const held = a.newLock('uploads/z')
  await held.lock(new AbortController().signal, () => { /* a holder that does not let go */ })
  await t.rejects(b.newLock('uploads/z').lock(new AbortController().signal, () => {}), { status_code: 500 } as never)
  const ac = new AbortController()
  const waiting = b.newLock('uploads/z').lock(ac.signal, () => {})
  ac.abort()
  await t.rejects(waiting, { status_code: 500 } as never)
  await held.unlock()
})

t.test('a holder that stops renewing (a crashed process) loses the lock after ttlMs', async (t) => {
  const { a, b, prefix } = pair(t, { ttlMs: 400, acquireTimeoutMs: 5000 })
  const held = a.newLock('uploads/crash')
  await held.lock(new AbortController().signal, () => {})
  // the crash: renewals stop, nothing is released
  clearInterval((held as unknown as { renewal: NodeJS.Timeout }).renewal)
  const t0 = Date.now()
  await b.newLock('uploads/crash').lock(new AbortController().signal, () => {})
  t.ok(Date.now() - t0 < 4000, 'taken over once the TTL ran out')
  const redis = createRedis(TEST_REDIS_URL, { enableOfflineQueue: true })
  t.teardown(() => redis.disconnect())
  t.equal(await redis.pttl(`${prefix}:tus:{uploads/crash}:lock`) > 0, true, 'the new holder renews its lock')
})
