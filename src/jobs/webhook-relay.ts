import type { FastifyInstance } from 'fastify'
import { processorOf } from './types.js'
import { queueDeliveries, relayOutbox, sweepLostJobs } from '../domain/webhooks/relay.js'

const BATCH = 500
const MAX_BATCHES = 20

/**
 * The outbox relay, on a repeat (WEBHOOK_RELAY_INTERVAL_MS): new events to deliveries, deliveries
 * to batch jobs; every WEBHOOK_SWEEP_INTERVAL_MS also the sweep for deliveries whose job Redis lost.
 */
export default processorOf({
  name: 'webhook-relay',
  async process (app) {
    const deps = app.webhooks.relay
    // One run at a time in a process (a run can outlast the interval): batches then follow the events' order.
    if (deps.running) return { skipped: true }
    deps.running = true
    try {
      return await relay(app)
    } finally {
      deps.running = false
    }
  },
})

async function relay (app: FastifyInstance): Promise<{ events: number, queued: number, lost: number }> {
  const deps = app.webhooks.relay
  let events = 0
  for (let i = 0; i < MAX_BATCHES; i++) {
    const r = await relayOutbox(deps, BATCH)
    events += r.events
    if (r.events < BATCH) break
  }
  let lost = 0
  if (deps.sweep.intervalMs > 0 && Date.now() - deps.sweep.last >= deps.sweep.intervalMs) {
    deps.sweep.last = Date.now()
    lost = await sweepLostJobs(deps)
    if (lost > 0) app.log.warn({ lost }, 'webhook deliveries whose job redis had lost: queued again')
  }
  let queued = 0
  for (let n = -1; n !== 0 && queued < BATCH * MAX_BATCHES;) queued += n = await queueDeliveries(deps, BATCH)
  return { events, queued, lost }
}
