import t from 'tap'
import { resumeOnAnotherProcess } from './tus-resume.js'

t.setTimeout(600_000)

t.test('local storage: 1 GiB over tus, cut at ~50 %, resumed and finished on another API process', { timeout: 600_000 }, async (t) => {
  await resumeOnAnotherProcess(t, {})
})
