import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

/**
 * Where a webhook may go (SSRF): never to loopback, private, shared, link-local (cloud metadata),
 * multicast or reserved addresses, unless WEBHOOK_ALLOW_PRIVATE. Checked on the addresses the
 * name resolves to, at creation and again at every attempt, which then connects to the address
 * that was checked (src/domain/webhooks/send.ts), so a name that re-resolves elsewhere (DNS
 * rebinding) cannot redirect it.
 */
const blocked = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
] as const) blocked.addSubnet(net, prefix, 'ipv6')

/** The IPv4 address inside an IPv4-mapped, -compatible or NAT64 IPv6 address, if any. */
function embeddedV4 (address: string): string | null {
  const m = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (m?.[1] !== undefined) return m[1]
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address)
  if (hex?.[1] === undefined || hex[2] === undefined) return null
  const hi = parseInt(hex[1], 16)
  const lo = parseInt(hex[2], 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

export function isPublicAddress (address: string): boolean {
  const family = isIP(address)
  if (family === 4) return !blocked.check(address, 'ipv4')
  if (family !== 6) return false
  const v4 = embeddedV4(address)
  if (v4 !== null) return !blocked.check(v4, 'ipv4')
  return !blocked.check(address, 'ipv6')
}

export interface Destination { address: string, family: 4 | 6 }

export type Checked = { ok: true, to: Destination } | { ok: false, reason: string }

/** Resolves the URL's host and checks every address it names; the one to connect to, or why not. */
export async function checkDestination (url: URL, allowPrivate: boolean): Promise<Checked> {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  let addresses: Array<{ address: string, family: number }>
  try {
    addresses = isIP(host) !== 0 ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true, verbatim: true })
  } catch (err) {
    return { ok: false, reason: `the host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})` }
  }
  const first = addresses[0]
  if (first === undefined) return { ok: false, reason: `the host ${host} does not resolve` }
  if (!allowPrivate) {
    const refused = addresses.find(a => !isPublicAddress(a.address))
    if (refused !== undefined) return { ok: false, reason: `the host ${host} resolves to ${refused.address}, a loopback, private, link-local or reserved address` }
  }
  return { ok: true, to: { address: first.address, family: first.family === 6 ? 6 : 4 } }
}
