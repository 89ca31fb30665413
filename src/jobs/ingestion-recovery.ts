import { defineJob } from './types.js'
import { recoverIngestions } from './ingestion/recovery.js'

export const RECOVERY_JOB = 'ingestion-recovery'
/** Rows younger than this are left alone: their trigger request or worker may still be busy with them. */
export const RECOVERY_GRACE_MS = 60_000

/** Scheduled sweep: re-enqueues queued rows whose job is missing, settles running rows whose job vanished. */
export default defineJob<Record<string, never>>({
  queue: 'ingestion',
  name: RECOVERY_JOB,
  async process (app) {
    const res = await recoverIngestions(app, RECOVERY_GRACE_MS)
    if (res.requeued + res.failed + res.rearmed > 0) app.log.warn(res, 'ingestion recovery sweep acted')
    return res
  },
})
