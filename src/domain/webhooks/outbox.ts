import { sql } from 'drizzle-orm'
import type { DbOrTx, Statement } from '../../db.js'
import type { WebhookEventType } from '../../constants.js'
import { newId } from '../../lib/ids.js'

/**
 * The transactional outbox of outbound webhooks (docs/webhooks.md): every change that webhooks
 * announce writes its event here, in the transaction of the change, so an event exists exactly
 * when its change was committed. The relay (src/jobs/webhook-relay.ts) moves the rows on to
 * deliveries and the queue; Redis plays no part until then. This module owns the outbox's SQL.
 *
 * `seq` counts the events of one subject (`document:<id>`, `user:<id>`) from 1: the
 * per-subject counter is bumped with LAST_INSERT_ID(expr), which leaves the new value on the
 * transaction's connection for the event's INSERT (no read back). The counter's row lock orders
 * two changes of one subject: the later commit has the higher number.
 */

export const documentSubject = (id: string): string => `document:${id}`
export const userSubject = (id: string): string => `user:${id}`

export interface OutboxEvent {
  type: WebhookEventType
  /** the stream the event is ordered in: `document:<id>` (ingestion events too) or `user:<id>` */
  subject: string
  /** the resource as the API returns it to an admin */
  data: object
}

/** Writes one event in `tx` (call it inside the transaction of the change). */
export async function recordEvent (tx: DbOrTx, e: OutboxEvent, at = new Date()): Promise<void> {
  await tx.execute(sql`INSERT INTO webhook_sequences (subject, seq) VALUES (${e.subject}, LAST_INSERT_ID(1)) ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(seq + 1)`)
  await tx.execute(sql`INSERT INTO webhook_events (id, type, subject, seq, data, hydrate, created_at) VALUES (${newId()}, ${e.type}, ${e.subject}, LAST_INSERT_ID(), ${JSON.stringify(e.data)}, NULL, ${at})`)
}

/**
 * Writes many events of distinct subjects in `tx` (a change of many documents at once: a user's
 * deletion): 500 at a time, each 500 in three statements (the counters bumped with one multi-row
 * upsert, read back under their row locks, the events in one multi-row INSERT).
 */
export async function recordEvents (tx: DbOrTx, events: OutboxEvent[], at = new Date()): Promise<void> {
  if (new Set(events.map(e => e.subject)).size !== events.length) {
    for (const e of events) await recordEvent(tx, e, at)
    return
  }
  for (let i = 0; i < events.length; i += 500) {
    const chunk = events.slice(i, i + 500)
    const subjects = sql.join(chunk.map(e => sql`${e.subject}`), sql`, `)
    await tx.execute(sql`INSERT INTO webhook_sequences (subject, seq) VALUES ${sql.join(chunk.map(e => sql`(${e.subject}, 1)`), sql`, `)} ON DUPLICATE KEY UPDATE seq = seq + 1`)
    const [rows] = await tx.execute(sql`SELECT subject, seq FROM webhook_sequences WHERE subject IN (${subjects}) FOR UPDATE`) as unknown as [Array<{ subject: string, seq: number | string }>]
    const seqOf = new Map(rows.map(r => [r.subject, Number(r.seq)]))
    await tx.execute(sql`INSERT INTO webhook_events (id, type, subject, seq, data, hydrate, created_at) VALUES ${sql.join(chunk.map(e =>
      sql`(${newId()}, ${e.type}, ${e.subject}, ${seqOf.get(e.subject) ?? null}, ${JSON.stringify(e.data)}, NULL, ${at})`), sql`, `)}`)
  }
}

/**
 * The event of an ingestion's final transition, for the transition's own batch
 * (src/domain/ingestions/transitions.ts): written only when the guarded UPDATE before it changed
 * the row (`@quire_changed`). `known` holds what the transition set; the relay completes `data`
 * with the rest of the ingestion as the API returns it (`hydrate`), the ordering subject is its
 * document's.
 */
export function ingestionEventStatements (ingestionId: string, type: WebhookEventType, known: Record<string, unknown>, at: Date): Statement[] {
  return [
    ["INSERT INTO webhook_sequences (subject, seq) SELECT CONCAT('document:', document_id), LAST_INSERT_ID(1) FROM ingestions WHERE id = ? AND @quire_changed = 1 ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(webhook_sequences.seq + 1)", [ingestionId]],
    ["INSERT INTO webhook_events (id, type, subject, seq, data, hydrate, created_at) SELECT ?, ?, CONCAT('document:', document_id), LAST_INSERT_ID(), ?, ?, ? FROM ingestions WHERE id = ? AND @quire_changed = 1",
      [newId(), type, JSON.stringify(known), `ingestion:${ingestionId}`, at, ingestionId]],
  ]
}
