import { test } from 'tap'
import { isPublicAddress } from '../../src/domain/webhooks/destination.js'
import { backoffMs, payloadOf } from '../../src/domain/webhooks/deliver.js'
import { endpointGate } from '../../src/domain/webhooks/gate.js'
import { newSigningSecret, secretBox } from '../../src/domain/webhooks/secrets.js'
import { Webhook } from 'standardwebhooks'

test('destination classifier: private, loopback, link-local, metadata and reserved addresses are not public', async (t) => {
  for (const a of ['127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.0.10', '169.254.169.254', '100.100.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fd00:ec2::254', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', 'not-an-ip']) {
    t.notOk(isPublicAddress(a), `${a} refused`)
  }
  for (const a of ['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) t.ok(isPublicAddress(a), `${a} allowed`)
})

test('backoff: exponential with jitter, capped', async (t) => {
  for (let n = 1; n <= 30; n++) {
    const full = Math.min(1000 * 2 ** (n - 1), 60_000)
    const d = backoffMs(n, 1000, 60_000)
    t.ok(d >= full / 2 && d <= full, `attempt ${n}: ${d} in [${full / 2}, ${full}]`)
  }
})

test('endpoint gate: `limit` run, `maxWaiting` wait in turn, the rest are refused; per endpoint', async (t) => {
  const gate = endpointGate()
  const a = await gate.enter('e1', 1, 1)
  t.ok(a)
  t.ok(await gate.enter('e2', 1, 1), 'another endpoint is not affected')
  let second: (() => void) | null = null
  const waiting = gate.enter('e1', 1, 1).then(r => { second = r })
  t.equal(await gate.enter('e1', 1, 1), null, 'past the waiting bound: refused')
  t.equal(second, null, 'waits while the slot is taken')
  a!()
  a!()
  await waiting
  t.ok(second, 'gets the slot when it is released')
})

test('secrets: sealed at rest, opened with the same key only; payloads sign and verify with standardwebhooks', async (t) => {
  const secret = newSigningSecret()
  const box = secretBox('k'.repeat(40))
  const sealed = box.seal(secret)
  t.notOk(sealed.includes(secret.slice(6)))
  t.equal(box.open(sealed), secret)
  t.throws(() => secretBox('j'.repeat(40)).open(sealed), 'another key cannot open it')
  const body = payloadOf({ id: 'e1', type: 'document.updated', data: { id: 'd1' }, seq: 3, createdAt: new Date(0) })
  t.same(JSON.parse(body), { id: 'e1', type: 'document.updated', timestamp: '1970-01-01T00:00:00.000Z', data: { id: 'd1', sequence: 3 } })
  const now = new Date()
  const signature = new Webhook(secret).sign('e1', now, body)
  const headers = { 'webhook-id': 'e1', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature }
  t.same(new Webhook(secret).verify(body, headers), JSON.parse(body))
  t.throws(() => new Webhook(secret).verify(body.replace('d1', 'd2'), headers))
})
