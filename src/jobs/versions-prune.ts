import { processorOf } from './types.js'

export const VERSIONS_PRUNE_JOB = 'versions-prune'

/**
 * Deletes a document's versions beyond VERSIONS_KEEP, objects first, then rows
 * (src/domain/version-service.ts `prune`). Retried with backoff until the storage answers.
 */
export default processorOf({
  name: VERSIONS_PRUNE_JOB,
  async process (app, job) {
    const pruned = await app.versionService.prune(job.data.documentId)
    return { pruned }
  },
})
