import t from 'tap'
import { resumeOnAnotherProcess } from './tus-resume.js'
import { startS3WithListParts } from './s3-multipart.js'

t.setTimeout(600_000)

t.test('S3 (multipart): 1 GiB over tus, cut at ~50 %, resumed and finished on another API process', { timeout: 600_000 }, async (t) => {
  await resumeOnAnotherProcess(t, await startS3WithListParts(t))
})
