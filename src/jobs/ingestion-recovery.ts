import { defineJob } from './types.js'
import { recoverIngestions, reindexStale } from './ingestion/recovery.js'

export const RECOVERY_JOB = 'ingestion-recovery'

/** Scheduled sweep: re-enqueues queued rows whose job is missing, settles running rows whose job vanished. */
export default defineJob<Record<string, never>>({
  queue: 'ingestion',
  name: RECOVERY_JOB,
  async process (app) {
    const res = await recoverIngestions(app, app.config.INGESTION_RECOVERY_GRACE_MS)
    if (res.requeued + res.failed + res.rearmed > 0) app.log.warn(res, 'ingestion recovery sweep acted')
    const reindexed = await reindexStale(app, app.config.INGESTION_RECOVERY_GRACE_MS)
    if (reindexed > 0) app.log.warn({ reindexed }, 'ingestion recovery sweep: stale documents sent to the index again')
    return { ...res, reindexed }
  },
})
