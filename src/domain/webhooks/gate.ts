/**
 * One worker process' share of an endpoint's concurrency: at most `limit` attempts run to one
 * endpoint at once here, and at most `maxWaiting` more wait in this process for one of them (a
 * wait is cheaper than putting the job back in the queue and taking it again). Past that the job
 * goes back to the queue, delayed: a slow endpoint holds at most `limit + maxWaiting` of the
 * worker's WEBHOOK_CONCURRENCY slots, never all of them. (The limit across workers is the Redis
 * slot set in deliver.ts.)
 */
export function endpointGate () {
  const state = new Map<string, { running: number, waiting: Array<() => void> }>()

  async function enter (endpointId: string, limit: number, maxWaiting: number): Promise<(() => void) | null> {
    let s = state.get(endpointId)
    if (s === undefined) {
      s = { running: 0, waiting: [] }
      state.set(endpointId, s)
    }
    const e = s
    if (e.running >= limit) {
      if (e.waiting.length >= maxWaiting) return null
      await new Promise<void>(resolve => e.waiting.push(resolve))
    } else {
      e.running++
    }
    let left = false
    return () => {
      if (left) return
      left = true
      const next = e.waiting.shift()
      if (next !== undefined) next() // the slot passes on: `running` stays
      else if (--e.running === 0) state.delete(endpointId)
    }
  }

  return { enter }
}

export type EndpointGate = ReturnType<typeof endpointGate>
