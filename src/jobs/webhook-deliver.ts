import { DelayedError } from 'bullmq'
import { processorOf } from './types.js'
import { runDelivery } from '../domain/webhooks/deliver.js'

/** One run of a webhook delivery; a retry, an ordering wait or a busy endpoint puts the job back, delayed. */
export default processorOf({
  name: 'webhook-deliver',
  async process (app, job) {
    const r = await runDelivery(app.webhooks.deliver, job.data.deliveryId, job.data.endpointId)
    if ('delayMs' in r) {
      await job.moveToDelayed(Date.now() + r.delayMs, job.token)
      throw new DelayedError()
    }
    return r
  },
})
