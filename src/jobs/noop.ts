import { processorOf } from './types.js'

/** Health probe for the pipeline: the worker answers it with the time it ran. */
export default processorOf({
  name: 'noop',
  async process (_app, job) {
    return { echo: job.data.echo ?? null, at: new Date().toISOString() }
  },
})
