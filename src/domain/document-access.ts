import type { Actor } from '../lib/actor.js'
import { DOCUMENT_COLUMNS, toDocumentRow, type RawDocumentRow } from '../db/hot-paths.js'
import type { SQL } from 'drizzle-orm'
import type { Db } from '../db.js'
import type { documents } from '../../drizzle/schema/index.js'
import { isId } from '../lib/ids.js'
import { conflict, forbidden, notFound } from '../lib/errors.js'
import { decide, factsOf } from './access/document-rule.js'
import { ruleCondition, ruleSql, type SqlFragment } from './access/document-sql.js'

export { DOCUMENT_RULE, decide, factsOf, type Action as DocumentRuleAction } from './access/document-rule.js'
export { listBranches, ruleCondition, ruleSql, type ListBranch, type SqlFragment } from './access/document-sql.js'

/*
 * Object-level access to documents. The rule itself is defined once in
 * src/domain/access/document-rule.ts (DOCUMENT_RULE); what follows are its uses: the predicate over
 * a loaded row, the SQL conditions, and loading a document for a route.
 */
export type DocumentAction = 'read' | 'write' | 'share' | 'manage'

/** SQL condition: the documents `actor` may read, were they live (drizzle; undefined = all). */
export const visibleCondition = (actor: Actor): SQL | undefined => ruleCondition(actor, 'read')

/** SQL condition: the documents `actor` may write. */
export const writableCondition = (actor: Actor): SQL | undefined => ruleCondition(actor, 'write')

/**
 * SQL condition: the documents that are there for `actor` at all, trash included (a trashed one
 * only for those who may restore it): `isReadable` in SQL. For queries over rows that belong to a
 * document (ingestions), so they follow the document rule exactly.
 */
export const readableCondition = (actor: Actor): SQL | undefined => ruleCondition(actor, 'present')

/**
 * Raw SQL over alias `d` (with its parameters, in order): the documents `actor` may start an
 * ingestion on (live, readable, writable). For the trigger's checked INSERT ... SELECT.
 */
export const triggerableSql = (actor: Actor): SqlFragment => ruleSql(actor, 'trigger')

export type DocumentRow = typeof documents.$inferSelect

export interface DocumentWithAccess {
  doc: DocumentRow
  canRead: boolean
  canWrite: boolean
  canShare: boolean
  isOwner: boolean
}

/** The access `actor` has on one document row, given its share (if any). */
export function accessOf (actor: Actor, doc: Pick<DocumentRow, 'ownerId' | 'visibility'>, share: 'read' | 'write' | null): Omit<DocumentWithAccess, 'doc'> {
  const facts = factsOf(actor.id, doc, share)
  return {
    canRead: decide(actor, 'read', facts),
    canWrite: decide(actor, 'write', facts),
    canShare: decide(actor, 'share', facts),
    isOwner: facts.owner === true,
  }
}

const NOBODY: Actor = { id: '', can: () => false }

// The documents columns, the raw row and its mapper live with the other hand-written SQL.
export { DOCUMENT_COLUMNS, toDocumentRow, type RawDocumentRow } from '../db/hot-paths.js'

type Trashed = 'exclude' | 'only' | 'any'

// The hottest query of the API (every document route): plain SQL through mysql2's `execute` (a
// server-side prepared statement per pooled connection), one fixed statement per trashed mode.
const loadSql = (trashed: string): string =>
  `SELECT ${DOCUMENT_COLUMNS}, s.access AS share_access FROM documents d ` +
  'LEFT JOIN document_shares s ON s.document_id = d.id AND s.user_id = ? ' +
  `WHERE d.id = ?${trashed} LIMIT 1`
const LOAD_SQL: Record<Trashed, string> = {
  exclude: loadSql(' AND d.deleted_at IS NULL'),
  only: loadSql(' AND d.deleted_at IS NOT NULL'),
  any: loadSql(''),
}

/**
 * Loads a document with the actor's access. Returns null when it does not exist or the actor may
 * not see it at all (callers answer 404, never 403, so existence does not leak).
 * `trashed`: 'exclude' (default) hides trashed documents, 'only' returns only trashed ones, 'any' both.
 */
export async function loadDocumentFor (db: Db, actor: Actor, id: string, trashed: Trashed = 'exclude'): Promise<DocumentWithAccess | null> {
  if (!isId(id)) return null
  const [rows] = await db.$client.execute(LOAD_SQL[trashed], [actor.id, id]) as unknown as [Array<RawDocumentRow & { share_access: string | null }>]
  const row = rows[0]
  if (row === undefined) return null
  const doc = toDocumentRow(row)
  const access = accessOf(actor, doc, row.share_access as 'read' | 'write' | null)
  if (!access.canRead) return null
  return { doc, ...access }
}

export type Need = 'read' | 'write' | 'share'

/** Whether a document is there for the actor at all (else 404): readable, and when trashed only for those who may restore it. */
export const isReadable = (access: Pick<DocumentWithAccess, 'canRead' | 'canWrite'>, trashed: boolean): boolean =>
  decide(NOBODY, 'present', { live: !trashed, trashed }, { read: access.canRead, write: access.canWrite })

/**
 * Loads a document for a route and enforces the object-level rule: null/invisible -> 404, visible
 * but without the needed access -> 403. A trashed document is visible only to those who may
 * write (restore) it; `trashed` chooses whether trashed documents are considered at all.
 */
export async function requireDocument (db: Db, actor: Actor, id: string, need: Need, trashed: Trashed = 'exclude'): Promise<DocumentWithAccess> {
  const found = await loadDocumentFor(db, actor, id, trashed)
  if (found === null || !isReadable(found, found.doc.deletedAt !== null)) throw notFound('Document')
  if (need === 'write' && !found.canWrite) {
    throw forbidden('You may read this document but not change it: that takes being its owner, a write share, or the documents:manage permission')
  }
  if (need === 'share' && !found.canShare) {
    throw forbidden(found.isOwner
      ? 'Sharing this document requires the documents:share permission, which your account does not have; ask an admin to grant it'
      : 'Only the owner (with the documents:share permission) or a user with the documents:manage permission may share this document')
  }
  return found
}

/**
 * DELETE ?permanent=true: loaded as for a write, then the rule's `purge` (403 unless the owner or
 * documents:manage) and `purgeLive` (a live document must go to the trash first, 409, unless
 * documents:manage).
 */
export async function requirePurgeable (db: Db, actor: Actor, id: string): Promise<DocumentWithAccess> {
  const found = await requireDocument(db, actor, id, 'write', 'any')
  const facts = factsOf(actor.id, found.doc, null)
  const given = { present: true, write: found.canWrite, read: found.canRead }
  if (!decide(actor, 'purge', facts, given)) throw forbidden('Deleting a document permanently requires being its owner, or the documents:manage permission')
  if (found.doc.deletedAt === null && !decide(actor, 'purgeLive', facts, given)) throw conflict('Move the document to the trash before deleting it permanently', 'not_trashed')
  return found
}
