import { processorOf } from './types.js'
import { callbackUrl } from '../domain/ingestion-signing.js'
import { displayUrl } from '../lib/http.js'

/** Fails an ingestion the backend accepted (202) but never called back for. */
export default processorOf({
  name: 'ingestion-callback-timeout',
  async process (app, job) {
    const ms = app.config.INGESTION_CALLBACK_TIMEOUT_MS
    // The backend calls back on PUBLIC_URL: the usual cause is an address it cannot reach.
    const error = `no callback from the backend within ${ms} ms (INGESTION_CALLBACK_TIMEOUT_MS); it calls back to ${callbackUrl(displayUrl(app.config.PUBLIC_URL), job.data.ingestionId)}: check that it can reach PUBLIC_URL`
    const failed = await app.ingestions.transition(job.data.ingestionId, { from: ['running'], to: 'failed', set: { lastError: error, finishedAt: new Date() }, event: { type: 'failed', message: error } })
    if (failed) app.log.warn({ ingestionId: job.data.ingestionId }, error)
    return { failed }
  },
})
