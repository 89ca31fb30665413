import { processorOf } from './types.js'
import { queueDeliveries, relayOutbox } from '../domain/webhooks/relay.js'

const BATCH = 500
const MAX_BATCHES = 20

/** The outbox relay, on a repeat (WEBHOOK_RELAY_INTERVAL_MS): new events to deliveries, deliveries to jobs. */
export default processorOf({
  name: 'webhook-relay',
  async process (app) {
    const deps = app.webhooks.relay
    let events = 0
    for (let i = 0; i < MAX_BATCHES; i++) {
      const r = await relayOutbox(deps, BATCH)
      events += r.events
      if (r.events < BATCH) break
    }
    let queued = 0
    for (let n = -1; n !== 0 && queued < BATCH * MAX_BATCHES;) queued += n = await queueDeliveries(deps, BATCH)
    return { events, queued }
  },
})
