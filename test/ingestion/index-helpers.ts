import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { eq, sql } from 'drizzle-orm'
import { documents, documentVersions } from '../../drizzle/schema/index.js'
import { json, scriptedBackend, type ScriptedRequest } from './helpers.js'

/**
 * Stands in for the versions route (POST /documents/:id/versions) until it lands: stores the bytes
 * as version n+1, records it, makes it current, and tells the ingestion service, as the versions
 * service's hook does.
 */
export async function addVersion (app: FastifyInstance, documentId: string, actorId: string, content: string): Promise<number> {
  const [doc] = await app.db.select().from(documents).where(eq(documents.id, documentId))
  if (doc === undefined) throw new Error('no such document')
  const n = doc.currentVersion + 1
  const bytes = Buffer.from(content)
  const storageKey = `documents/${documentId}.v${n}`
  await app.storage.put(storageKey, Readable.from([bytes]))
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const now = new Date()
  await app.db.insert(documentVersions).values({ documentId, number: n, storageKey, size: bytes.length, sha256, mimeType: doc.mimeType, filename: doc.filename, createdAt: now, createdBy: actorId })
  await app.db.update(documents).set({ currentVersion: n, storageKey, size: bytes.length, sha256, updatedAt: now, version: sql`${documents.version} + 1` }).where(eq(documents.id, documentId))
  await app.ingestions.documentChanged({ actorId, requestId: null }, documentId)
  return n
}

/**
 * A scripted backend that keeps an index the way the contract says: an upsert replaces the
 * document's version (an older one than it holds is answered `ignored`), a delete removes it (404
 * when absent). `delayMs` slows every answer; `failFirst` answers that many requests 503 first.
 */
export async function indexBackend (opts: { delayMs?: number, failFirst?: number } = {}) {
  const held = new Map<string, number>()
  const sent: Array<{ operation: string, documentId: string, version: number, ingestionId: string }> = []
  let failures = opts.failFirst ?? 0
  // while paused, every request waits (the test decides when the backend gets to answer)
  let paused: { promise: Promise<void>, release: () => void } | null = null
  const backend = await scriptedBackend(async (req: ScriptedRequest, _n, res) => {
    if (opts.delayMs !== undefined) await sleep(opts.delayMs)
    for (let p = paused; p !== null; p = paused) await p.promise
    if (failures > 0) { failures--; return json(res, 503, { error: 'warming up' }) }
    const b = req.body as { ingestionId: string, operation: string, document: { id: string, version: number } }
    sent.push({ operation: b.operation, documentId: b.document.id, version: b.document.version, ingestionId: b.ingestionId })
    if (b.operation === 'delete') {
      if (!held.has(b.document.id)) return json(res, 404, { error: 'not in the index' })
      held.delete(b.document.id)
      return json(res, 200, { status: 'succeeded', result: { deleted: true } })
    }
    const had = held.get(b.document.id)
    if (had !== undefined && had > b.document.version) return json(res, 200, { status: 'succeeded', result: { ignored: 'older-version', version: had } })
    held.set(b.document.id, b.document.version)
    return json(res, 200, { status: 'succeeded', result: { version: b.document.version, chunks: 3, pipelineVersion: 'scripted-1' } })
  })
  return {
    ...backend,
    held,
    sent,
    setFailures: (n: number) => { failures = n },
    pause: () => { let release = (): void => {}; const promise = new Promise<void>(resolve => { release = resolve }); paused = { promise, release } },
    resume: () => { const p = paused; paused = null; p?.release() },
  }
}

/** The document's index object once it matches `expected` (the projection follows each final status right after it commits). */
export async function indexEventually (app: FastifyInstance, headers: Record<string, string>, documentId: string, expected: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { eventually } = await import('./helpers.js')
  return await eventually(async () => {
    const index = await indexOf(app, headers, documentId)
    return Object.entries(expected).every(([k, v]) => index[k] === v) ? index : null
  }, 30000)
}

/** The document's index object as the API shows it. */
export async function indexOf (app: FastifyInstance, headers: Record<string, string>, documentId: string): Promise<Record<string, unknown>> {
  const res = await app.inject({ method: 'GET', url: `/documents/${documentId}`, headers })
  return res.json().index
}
