import { test } from 'tap'
import type { ServerResponse } from 'node:http'
import { createUser } from '../helper.js'
import { eventually } from '../ingestion/helpers.js'
import { apiAndWorker, newDocument, receiver, register, streamOf } from './helpers.js'

test('a stalled endpoint holds at most WEBHOOK_ENDPOINT_CONCURRENCY requests and does not delay another endpoint', async (t) => {
  const { app } = await apiAndWorker(t, { WEBHOOK_ENDPOINT_CONCURRENCY: 2, WEBHOOK_TIMEOUT_MS: 120_000 })
  const admin = await createUser(app, 'admin')
  const editor = await createUser(app, 'editor')
  // The stalled receiver keeps every request open until the test lets them go.
  const held: ServerResponse[] = []
  let open = 0
  let maxOpen = 0
  let holding = true
  const stalled = await receiver(t, (_r, res) => {
    open++
    maxOpen = Math.max(maxOpen, open)
    res.on('close', () => { open-- })
    if (!holding) return 204
    held.push(res)
    return undefined
  })
  const quick = await receiver(t)
  await register(t, app, admin, stalled.url(), ['document.created'])
  await register(t, app, admin, quick.url(), ['document.created'])

  const docs: string[] = []
  for (let i = 0; i < 6; i++) docs.push(await newDocument(app, editor, `doc-${i}.txt`))
  await eventually(async () => docs.every(id => streamOf(quick.received, id).length === 1), 60_000)
  t.pass('the other endpoint got every event while the stalled one held its requests')
  await eventually(async () => held.length >= 2, 30_000)
  t.ok(maxOpen <= 2, `at most 2 requests at once to the stalled endpoint (saw ${maxOpen})`)

  holding = false
  for (const res of held.splice(0)) res.writeHead(204).end()
  await eventually(async () => docs.every(id => streamOf(stalled.received, id).length === 1), 60_000)
  t.ok(maxOpen <= 2, `still at most 2 at once (saw ${maxOpen})`)
})
