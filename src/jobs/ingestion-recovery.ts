import { defineJob } from './types.js'
import { recoverIngestions } from './ingestion/recovery.js'

export const RECOVERY_JOB = 'ingestion-recovery'

/** Scheduled sweep: re-enqueues queued rows whose job is missing, settles running rows whose job vanished. */
export default defineJob<Record<string, never>>({
  queue: 'ingestion',
  name: RECOVERY_JOB,
  async process (app) {
    const res = await recoverIngestions(app, app.config.INGESTION_RECOVERY_GRACE_MS)
    if (res.requeued + res.failed + res.rearmed > 0) app.log.warn(res, 'ingestion recovery sweep acted')
    return res
  },
})
