import net from 'node:net'
import { once } from 'node:events'

/**
 * A TCP proxy in front of a real service that a test can cut (every connection reset, new ones
 * refused) and restore on the same port: an outage without stopping the shared server.
 */
export class TcpProxy {
  private server: net.Server | null = null
  private readonly sockets = new Set<net.Socket>()
  port = 0

  constructor (private readonly targetHost: string, private readonly targetPort: number) {}

  async start (port = 0): Promise<number> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    this.server = server
    this.port = (server.address() as net.AddressInfo).port
    return this.port
  }

  /** The outage: existing connections reset, new ones refused. */
  async cut (): Promise<void> {
    const server = this.server
    this.server = null
    for (const s of this.sockets) s.resetAndDestroy()
    this.sockets.clear()
    if (server !== null) await new Promise<void>(resolve => server.close(() => resolve()))
  }

  async restore (): Promise<void> {
    await this.start(this.port)
  }

  async close (): Promise<void> {
    await this.cut()
  }
}

/** Starts a proxy in front of the service of `url` (mysql:// or redis://); returns it and the URL through it. */
export async function proxyFor (t: { teardown: (fn: () => Promise<void>) => void }, url: string, defaultPort: number): Promise<{ proxy: TcpProxy, url: string }> {
  const target = new URL(url)
  const proxy = new TcpProxy(target.hostname, Number(target.port || defaultPort))
  await proxy.start()
  t.teardown(async () => await proxy.close())
  const via = new URL(url)
  via.port = String(proxy.port)
  return { proxy, url: via.toString() }
}
