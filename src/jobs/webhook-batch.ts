import { DelayedError } from 'bullmq'
import { processorOf } from './types.js'
import { runBatch } from '../domain/webhooks/batch.js'

/** A batch of an endpoint's new deliveries, sent on keep-alive lanes; an endpoint with every slot taken puts it back, delayed. */
export default processorOf({
  name: 'webhook-batch',
  async process (app, job) {
    const r = await runBatch(app.webhooks.deliver, job.data.endpointId, job.data.deliveryIds, job.data.round ?? 0)
    if (r.outcome === 'busy') {
      await job.moveToDelayed(Date.now() + r.delayMs, job.token)
      throw new DelayedError()
    }
    return r
  },
})
