import type { RedisClient as Redis } from '../redis.js'

/**
 * Status changes fan out through one Redis pub/sub channel, so an SSE client on any API process
 * sees changes made by the worker, by a callback on another process, or by a cancel anywhere.
 */
export interface StatusMessage {
  id: string
  status: string
  type: string
  message: string
  at: string
}

export { FINAL_STATUSES, isFinal } from './ingestions/state-machine.js'

export const eventsChannel = (key: (...parts: string[]) => string): string => key('ingestion-events')

/** Publishes after the DB change committed. Best effort: SSE clients fall back to their snapshot. */
export async function publishStatus (redis: Pick<Redis, 'publish'>, channel: string, msg: StatusMessage): Promise<void> {
  await redis.publish(channel, JSON.stringify(msg))
}

type Listener = (msg: StatusMessage) => void

/** Per-process registry of SSE listeners by ingestion id, fed by one subscriber connection. */
export class StatusHub {
  private readonly listeners = new Map<string, Set<Listener>>()

  get size (): number {
    let n = 0
    for (const s of this.listeners.values()) n += s.size
    return n
  }

  add (id: string, fn: Listener): () => void {
    let set = this.listeners.get(id)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(id, set)
    }
    set.add(fn)
    return () => {
      const s = this.listeners.get(id)
      if (s === undefined) return
      s.delete(fn)
      if (s.size === 0) this.listeners.delete(id)
    }
  }

  dispatch (raw: string): void {
    let msg: StatusMessage
    try {
      msg = JSON.parse(raw) as StatusMessage
    } catch {
      return
    }
    if (typeof msg?.id !== 'string') return
    for (const fn of this.listeners.get(msg.id) ?? []) fn(msg)
  }
}
