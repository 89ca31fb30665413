import { acquireSlots, afterAttempt, busy, isSuccess, ORDER_WAIT_MS, sendEvent, senderOf, type DeliverDeps, type Outcome } from './deliver.js'
import { checkDestination } from './destination.js'
import type { AttemptResult } from './send.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { earliestUnsettled, failMany, findEndpoint, loadBatch, markJobs, recordDelivered, type DeliveryRow, type EndpointRow, type EventRow } from './store.js'

/** Adds jobs of their own (`webhook-deliver`, id `<delivery>.<retry_until ms>`) for deliveries a batch hands on, each delayed. */
export type EnqueueOwn = (items: Array<{ id: string, endpointId: string, retryUntil: Date, delayMs: number }>) => Promise<void>

/** Adds a batch job (`webhook-batch`), delayed; resolves to its job id. */
export type EnqueueBatch = (b: { endpointId: string, deliveryIds: string[], window: number, round?: number }, delayMs: number) => Promise<string>

export interface BatchDeps extends DeliverDeps { enqueueOwn: EnqueueOwn, enqueueBatch: EnqueueBatch }

/** A follow-up batch (the events that had to wait) runs after ORDER_WAIT_MS, doubling per round, at most this long. */
const FOLLOW_UP_MAX_MS = 10_000

export type BatchOutcome =
  | { outcome: 'done', delivered: number, retrying: number, followUp: number, failed: number }
  | { outcome: 'busy', delayMs: number }

interface Item { delivery: DeliveryRow, event: EventRow }

/** Successes are written this many at a time (one transaction each), or once this old; the rest at the end of the batch. */
const FLUSH_EVERY = 200
const FLUSH_AFTER_MS = 200
/** A batch finding every slot of its endpoint taken polls this long for one, then goes back to the queue (busy). */
const SLOT_WAIT_MS = 2000
const SLOT_POLL_MS = 25

/**
 * One batch of an endpoint's new deliveries (src/jobs/webhook-batch.ts; the relay makes them):
 * the fast path of a healthy endpoint. The batch's events are sent as chains, one per document in
 * sequence order, on as many keep-alive lanes as the endpoint's free slots (at most
 * WEBHOOK_ENDPOINT_CONCURRENCY across all workers); a chain goes on only after a 2xx. Successes
 * are logged in bulk. Whatever is not plainly delivered leaves the fast path for jobs of their
 * own (src/domain/webhooks/deliver.ts, backoff and all): the first failure stops the batch (the
 * failed delivery retries with its backoff, the rest of the batch follows in order), as does
 * running past WEBHOOK_TIMEOUT_MS, so a slow endpoint holds a worker slot about as long as one
 * attempt; events with an earlier event of their document unsettled outside the batch wait for it.
 * One batch per endpoint runs at a time in a process; a few more wait here for it, the others are
 * put back in the queue (busy), as are batches finding every slot of the endpoint taken.
 */
export async function runBatch (deps: BatchDeps, endpointId: string, ids: string[], round = 0): Promise<BatchOutcome> {
  const leave = await deps.gate.enter(`batch:${endpointId}`, deps.config.WEBHOOK_ENDPOINT_CONCURRENCY, Math.max(1, Math.floor(deps.config.WEBHOOK_CONCURRENCY / 4)))
  if (leave === null) return busy() as BatchOutcome
  try {
    return await drain(deps, endpointId, ids, round)
  } finally {
    leave()
  }
}

async function drain (deps: BatchDeps, endpointId: string, ids: string[], round: number): Promise<BatchOutcome> {
  const none = { outcome: 'done' as const, delivered: 0, retrying: 0, followUp: 0, failed: 0 }
  const endpoint = await findEndpoint(deps.db, endpointId)
  if (endpoint === null) return none // deleted, with its deliveries
  const items = (await loadBatch(deps.db, endpointId, ids)).filter(i => i.delivery.status === 'pending')
  if (items.length === 0) return none
  if (endpoint.status === 'disabled') {
    await failMany(deps.db, items.map(i => i.delivery.id), 'the endpoint is disabled', deps.clock())
    return { ...none, failed: items.length }
  }

  // Slots first (waiting a little for a batch ahead to finish: it keeps them until its successes
  // are written), then the order: what an earlier batch delivered meanwhile no longer holds us up.
  const subjects = [...new Set(items.flatMap(i => i.delivery.subject !== null && i.delivery.seq !== null ? [i.delivery.subject] : []))]
  const wanted = Math.min(deps.config.WEBHOOK_ENDPOINT_CONCURRENCY, subjects.length + items.filter(i => i.delivery.subject === null || i.delivery.seq === null).length)
  const releases = await slotsWaiting(deps, endpointId, wanted)
  if (releases.length === 0) return busy() as BatchOutcome
  try {
    return await send(deps, endpoint, items, subjects, releases, round)
  } finally {
    await Promise.all(releases.map(async r => { await r() }))
  }
}

/** Up to `wanted` of the endpoint's slots, polling for SLOT_WAIT_MS while none is free. */
async function slotsWaiting (deps: BatchDeps, endpointId: string, wanted: number): Promise<Array<() => Promise<void>>> {
  const end = Date.now() + SLOT_WAIT_MS
  for (;;) {
    const got = await acquireSlots(deps, endpointId, wanted)
    if (got.length > 0 || Date.now() >= end) return got
    await sleep(SLOT_POLL_MS)
  }
}

async function send (deps: BatchDeps, endpoint: EndpointRow, items: Item[], subjects: string[], releases: Array<() => Promise<void>>, round: number): Promise<BatchOutcome> {
  const endpointId = endpoint.id
  const earliest = await earliestUnsettled(deps.db, endpointId, subjects, items.map(i => i.delivery.id))
  const chains = new Map<string, Item[]>()
  const later: Item[] = [] // a follow-up batch
  const retrying: Array<{ item: Item, delayMs: number }> = [] // their own jobs, with backoff
  for (const it of items) {
    const { subject, seq } = it.delivery
    if (subject === null || seq === null) { chains.set(it.delivery.id, [it]); continue }
    if (seq > (earliest.get(subject) ?? Infinity)) { later.push(it); continue }
    const chain = chains.get(subject)
    if (chain === undefined) chains.set(subject, [it])
    else chain.push(it)
  }
  const queue = [...chains.values()].map(c => c.sort((a, b) => (a.delivery.seq ?? 0) - (b.delivery.seq ?? 0)))

  // Slots beyond the chains' number go back at once.
  for (const r of releases.splice(Math.max(queue.length, 0))) await r()

  // The secret opened and the destination checked (DNS, SSRF) once for the whole batch, which lasts at most one attempt's timeout.
  const to = senderOf(deps, endpoint)
  try {
    to.checked = await checkDestination(new URL(endpoint.url), deps.config.WEBHOOK_ALLOW_PRIVATE)
  } catch { /* an invalid URL: each attempt reports it */ }
  let stop = false
  let failed = 0
  let delivered = 0
  const deadline = Date.now() + deps.config.WEBHOOK_TIMEOUT_MS
  let done: Array<{ id: string, result: AttemptResult, at: Date }> = []
  let flushed = Date.now()
  const flush = async (): Promise<void> => {
    flushed = Date.now()
    const take = done
    done = []
    delivered += take.length
    await recordDelivered(deps.db, endpointId, take, deps.clock())
  }
  const lane = async (): Promise<void> => {
    for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
      for (let i = 0; i < chain.length; i++) {
        const it = chain[i]!
        if (stop || Date.now() > deadline) {
          later.push(...chain.slice(i))
          break
        }
        const result = await sendEvent(deps, to, it.event)
        if (isSuccess(result.statusCode)) {
          done.push({ id: it.delivery.id, result, at: deps.clock() })
          if (done.length >= FLUSH_EVERY || Date.now() - flushed > FLUSH_AFTER_MS) await flush()
          continue
        }
        stop = true
        const r: Outcome = await afterAttempt(deps, it.delivery, endpoint, result)
        if (r.outcome === 'retry') retrying.push({ item: it, delayMs: r.delayMs })
        else failed++
        later.push(...chain.slice(i + 1))
        break
      }
    }
  }
  await Promise.all(releases.map(async () => { await lane() }))
  await flush() // before the slots go (the caller's finally): a batch waiting for them then sees these delivered
  if (retrying.length > 0) {
    await deps.enqueueOwn(retrying.map(h => ({ id: h.item.delivery.id, endpointId, retryUntil: h.item.delivery.retryUntil, delayMs: h.delayMs })))
    await markJobs(deps.db, retrying.map(h => h.item.delivery.id), null)
  }
  if (later.length > 0) {
    const rest = later.sort((a, b) => a.delivery.id < b.delivery.id ? -1 : 1)
    const jobId = await deps.enqueueBatch({ endpointId, deliveryIds: rest.map(i => i.delivery.id), window: rest[0]!.delivery.retryUntil.getTime(), round: round + 1 },
      Math.min(ORDER_WAIT_MS * 2 ** Math.min(round, 10), FOLLOW_UP_MAX_MS))
    await markJobs(deps.db, rest.map(i => i.delivery.id), jobId)
  }
  return { outcome: 'done', delivered, retrying: retrying.length, followUp: later.length, failed }
}
