import { and, eq, isNotNull, isNull, or, sql, type SQL } from 'drizzle-orm'
import { documents, documentShares } from '../../../drizzle/schema/index.js'
import { normalize, type Action, type KnownFacts, type RowFact, type RuleActor, type Term } from './document-rule.js'

/*
 * The SQL renderings of the document rule (src/domain/access/document-rule.ts): each condition is
 * the rule normalized for one actor (permissions folded in), then written out. Facts shared by
 * every term are written once in front: `live AND (owner OR writeShare)`.
 */

/** Raw SQL over table alias `d` with positional parameters (mysql2 `execute`/`query`). */
export interface SqlFragment { sql: string, params: string[] }

const SHARE_EXISTS = 'EXISTS (SELECT 1 FROM document_shares s WHERE s.document_id = d.id AND s.user_id = ?'

/** One fact (or its negation) for `actorId` over alias `d`. */
export function rawFact (fact: RowFact, actorId: string, negated = false): SqlFragment {
  switch (fact) {
    case 'owner': return { sql: negated ? 'd.owner_id <> ?' : 'd.owner_id = ?', params: [actorId] }
    case 'internal': return { sql: negated ? "d.visibility <> 'internal'" : "d.visibility = 'internal'", params: [] }
    case 'shared': return { sql: `${negated ? 'NOT ' : ''}${SHARE_EXISTS})`, params: [actorId] }
    case 'writeShare': return { sql: `${negated ? 'NOT ' : ''}${SHARE_EXISTS} AND s.access = 'write')`, params: [actorId] }
    case 'live': return { sql: negated ? 'd.deleted_at IS NOT NULL' : 'd.deleted_at IS NULL', params: [] }
    case 'trashed': return { sql: negated ? 'd.deleted_at IS NULL' : 'd.deleted_at IS NOT NULL', params: [] }
  }
}

function drizzleFact (fact: RowFact, actorId: string): SQL {
  switch (fact) {
    case 'owner': return eq(documents.ownerId, actorId)
    case 'internal': return eq(documents.visibility, 'internal')
    case 'shared': return sql`exists (select 1 from ${documentShares} where ${documentShares.documentId} = ${documents.id} and ${documentShares.userId} = ${actorId})`
    case 'writeShare': return sql`exists (select 1 from ${documentShares} where ${documentShares.documentId} = ${documents.id} and ${documentShares.userId} = ${actorId} and ${documentShares.access} = 'write')`
    case 'live': return isNull(documents.deletedAt)
    case 'trashed': return isNotNull(documents.deletedAt)
  }
}

/** `terms` split into the facts every term has, and what is left of each term. */
function factor (terms: Term[]): { common: RowFact[], rest: Term[] } {
  const first = terms[0] ?? []
  const common = first.filter(f => terms.every(t => t.includes(f)))
  return { common, rest: terms.map(t => t.filter(f => !common.includes(f))) }
}

/** The rule's condition for `action` as raw SQL over alias `d` ('FALSE' / 'TRUE' when the permissions decide). */
export function ruleSql (actor: RuleActor, action: Action, known: KnownFacts = {}): SqlFragment {
  const terms = normalize(actor, action, known)
  if (terms.length === 0) return { sql: 'FALSE', params: [] }
  const { common, rest } = factor(terms)
  const parts = common.map(f => rawFact(f, actor.id))
  if (!rest.some(t => t.length === 0)) {
    const ors = rest.map(t => {
      const fs = t.map(f => rawFact(f, actor.id))
      return { sql: fs.length === 1 ? fs[0]!.sql : `(${fs.map(x => x.sql).join(' AND ')})`, params: fs.flatMap(x => x.params) }
    })
    parts.push(ors.length === 1 ? ors[0]! : { sql: `(${ors.map(x => x.sql).join(' OR ')})`, params: ors.flatMap(x => x.params) })
  }
  if (parts.length === 0) return { sql: 'TRUE', params: [] }
  return { sql: parts.map(p => p.sql).join(' AND '), params: parts.flatMap(p => p.params) }
}

/** The rule's condition for `action` over the `documents` table (drizzle): undefined = every row. */
export function ruleCondition (actor: RuleActor, action: Action, known: KnownFacts = {}): SQL | undefined {
  const terms = normalize(actor, action, known)
  if (terms.length === 0) return sql`false`
  const { common, rest } = factor(terms)
  const parts = common.map(f => drizzleFact(f, actor.id))
  if (!rest.some(t => t.length === 0)) {
    parts.push(or(...rest.map(t => t.length === 1 ? drizzleFact(t[0]!, actor.id) : and(...t.map(f => drizzleFact(f, actor.id)))))!)
  }
  return parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : and(...parts)
}

/** One branch of a listing: rows with the `drive` fact (it picks the index walked), the `also` facts, none of the `not` facts. */
export interface ListBranch { drive: BranchDriver, also: RowFact[], not: RowFact[] }
/** The facts a listing branch can walk an index for. */
export type BranchDriver = 'owner' | 'internal' | 'shared' | 'writeShare'
const DRIVERS: readonly BranchDriver[] = ['owner', 'internal', 'shared', 'writeShare']

/**
 * The listing as disjoint branches (each term of the rule minus the terms before it), so each can
 * walk its own index; 'all' when the actor sees every row, [] when none. A live listing shows what
 * is `present` and live; the trash what is `present` and trashed (what the actor may restore).
 */
export function listBranches (actor: RuleActor, trashed: boolean): ListBranch[] | 'all' {
  const terms = normalize(actor, 'present', { live: !trashed, trashed })
  if (terms.some(t => t.length === 0)) return 'all'
  return terms.map((t, i) => {
    const drive = DRIVERS.find(f => t.includes(f))
    if (drive === undefined) throw new Error(`document rule: no index drives the term ${t.join(' AND ')}`)
    const not = terms.slice(0, i).map((p) => {
      if (p.length !== 1) throw new Error(`document rule: cannot exclude the term ${p.join(' AND ')} from a branch`)
      return p[0]!
    })
    return { drive, also: t.filter(f => f !== drive), not }
  })
}
