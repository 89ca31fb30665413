import { test } from 'tap'
import {
  ACTIONS, EDGES, FINAL_STATUSES, INGESTION_STATUSES, callbackOutcome, canMove, canRetry, isFinal,
} from '../../src/domain/ingestions/state-machine.js'

// The ingestion state machine on its own: no app, no database.

test('the edges: succeeded is final for good, failed and cancelled only go back to queued', async (t) => {
  t.same(EDGES.succeeded, [])
  t.same(EDGES.failed, ['queued'])
  t.same(EDGES.cancelled, ['queued'])
  for (const to of INGESTION_STATUSES) t.notOk(canMove('succeeded', to), `succeeded -> ${to}`)
  t.ok(canMove('queued', 'running'))
  t.ok(canMove('running', 'running'), 'another attempt of the same cycle')
  t.notOk(canMove('queued', 'queued'))
  t.notOk(canMove('failed', 'succeeded'), 'a failed ingestion needs a retry first')
  t.notOk(canMove('succeeded', 'failed'))
  t.notOk(canMove('bogus', 'queued'), 'unknown statuses have no edges')
  t.notOk(canMove('queued', 'bogus'))
})

test('every action moves only along edges of the table', async (t) => {
  for (const [name, a] of Object.entries(ACTIONS)) {
    for (const from of a.from) for (const to of a.to) t.ok(canMove(from, to), `${name}: ${from} -> ${to}`)
  }
})

test('final statuses are exactly those with no way forward but a retry', async (t) => {
  t.same([...FINAL_STATUSES].sort(), INGESTION_STATUSES.filter(s => !EDGES[s].includes('running')).sort())
  for (const s of INGESTION_STATUSES) t.equal(isFinal(s), (FINAL_STATUSES as readonly string[]).includes(s), s)
  t.notOk(isFinal('bogus'))
})

test('retry: from failed or cancelled only', async (t) => {
  t.same(INGESTION_STATUSES.filter(canRetry), ['failed', 'cancelled'])
})

test('callbacks: apply while open, no-op when repeated or cancelled, conflict between verdicts', async (t) => {
  const table: Array<[string, 'succeeded' | 'failed', string]> = [
    ['queued', 'succeeded', 'apply'], ['queued', 'failed', 'apply'],
    ['running', 'succeeded', 'apply'], ['running', 'failed', 'apply'],
    ['succeeded', 'succeeded', 'noop'], ['failed', 'failed', 'noop'],
    ['cancelled', 'succeeded', 'noop'], ['cancelled', 'failed', 'noop'],
    ['succeeded', 'failed', 'conflict'], ['failed', 'succeeded', 'conflict'],
  ]
  for (const [current, reported, expected] of table) t.equal(callbackOutcome(current, reported), expected, `${current} + ${reported}`)
  // whatever it applies is a legal edge
  for (const from of INGESTION_STATUSES) {
    for (const to of ['succeeded', 'failed'] as const) if (callbackOutcome(from, to) === 'apply') t.ok(canMove(from, to))
  }
})
