import { processorOf } from './types.js'

export const DELETE_OBJECTS_JOB = 'delete-objects'

/**
 * Deletes stored objects whose document row is already gone. Retried with exponential backoff
 * until the storage answers (a missing object counts as deleted).
 */
export default processorOf({
  name: DELETE_OBJECTS_JOB,
  async process (app, job) {
    for (const key of job.data.keys) await app.storage.delete(key)
    return { deleted: job.data.keys.length }
  },
})

// The API's side, kept importable from here.
export { enqueueObjectDeletion } from './object-deletion.js'
