import type { Permission } from '../permissions.js'

/*
 * THE document access rule, defined once. Every rendering comes from DOCUMENT_RULE below: the JS
 * predicate over a loaded row and its share (`decide`), the drizzle conditions and the raw SQL
 * fragments (src/domain/access/document-sql.ts), and the listing's UNION branches
 * (src/domain/documents.ts). test/documents/access-rule-matrix.test.ts holds them to one table.
 *
 * Atoms: a permission of the actor (known before any row is read), or a fact about the row for
 * this actor: `owner` (the actor owns it), `internal` (visibility = internal), `shared` (the actor
 * holds a share of it), `writeShare` (a `write` share; implies `shared`), `live` / `trashed`.
 */
export type RowFact = 'owner' | 'internal' | 'shared' | 'writeShare' | 'live' | 'trashed'
export type Atom = Permission | RowFact
export type Expr = Atom | { all: Expr[] } | { any: Expr[] } | { rule: Action }

const all = (...e: Expr[]): Expr => ({ all: e })
const any = (...e: Expr[]): Expr => ({ any: e })
const rule = (name: Action): Expr => ({ rule: name })

export type Action = 'read' | 'write' | 'share' | 'present' | 'restore' | 'purge' | 'purgeLive' | 'trigger'

export const DOCUMENT_RULE: Record<Action, Expr> = {
  /** may read it (were it live): documents:read, then manage, owner, internal or any share */
  read: all('documents:read', any('documents:manage', 'owner', 'internal', 'shared')),
  /** may change it (the route gates documents:update / delete first): manage, owner or a write share */
  write: any('documents:manage', 'owner', 'writeShare'),
  /** may share it or change its visibility: manage, or the owner holding documents:share */
  share: any('documents:manage', all('owner', 'documents:share')),
  /** it exists for the actor at all (else 404): readable, and in the trash only for who may restore it */
  present: all(rule('read'), any('live', rule('write'))),
  /** may take it out of the trash (the trash listing): there, trashed, writable */
  restore: all(rule('present'), 'trashed', rule('write')),
  /** may delete it for good: manage, or its owner (who must trash it first: purgeLive) */
  purge: all(rule('present'), rule('write'), any('documents:manage', 'owner')),
  /** may delete it for good without trashing it first */
  purgeLive: all(rule('purge'), 'documents:manage'),
  /** may start an ingestion on it: a live document the actor may read and write */
  trigger: all(rule('read'), rule('write'), 'live'),
}

/** `writeShare` implies `shared`; `live` and `trashed` exclude each other. */
const IMPLIES: Partial<Record<RowFact, RowFact[]>> = { writeShare: ['shared'] }
const EXCLUDES: Array<[RowFact, RowFact]> = [['live', 'trashed']]

export const ROW_FACTS: readonly RowFact[] = ['owner', 'internal', 'shared', 'writeShare', 'live', 'trashed']
const isRowFact = (a: string): a is RowFact => (ROW_FACTS as readonly string[]).includes(a)

export interface RuleActor { id: string, can: (p: Permission) => boolean }

/** What is known of the row; a fact left undefined stays symbolic (rendered to SQL). */
export type KnownFacts = Partial<Record<RowFact, boolean>>

/** The facts of one loaded row for one actor. */
export function factsOf (actorId: string, doc: { ownerId: string, visibility: string, deletedAt?: Date | null }, share: 'read' | 'write' | null): KnownFacts {
  const facts: KnownFacts = { owner: doc.ownerId === actorId, internal: doc.visibility === 'internal', shared: share !== null, writeShare: share === 'write' }
  if (doc.deletedAt !== undefined) { facts.live = doc.deletedAt === null; facts.trashed = doc.deletedAt !== null }
  return facts
}

/**
 * The JS predicate: whether `actor` may do `action` on a row whose facts are all known. `given`:
 * actions already decided for this row (their definitions are not evaluated again).
 */
export function decide (actor: RuleActor, action: Action, facts: KnownFacts, given: Partial<Record<Action, boolean>> = {}): boolean {
  const ev = (e: Expr): boolean => {
    if (typeof e === 'string') {
      if (!isRowFact(e)) return actor.can(e)
      const v = facts[e]
      if (v === undefined) throw new Error(`document rule: fact ${e} unknown`)
      return v
    }
    if ('all' in e) return e.all.every(ev)
    if ('any' in e) return e.any.some(ev)
    return given[e.rule] ?? ev(DOCUMENT_RULE[e.rule])
  }
  return given[action] ?? ev(DOCUMENT_RULE[action])
}

/** A conjunction of row facts; a condition in disjunctive normal form is a list of them. */
export type Term = RowFact[]

const closure = (t: Term): Set<RowFact> => {
  const s = new Set(t)
  for (const f of t) for (const g of IMPLIES[f] ?? []) s.add(g)
  return s
}
/** A term without facts implied by its other facts, or null when it contradicts itself. */
function reduce (t: Term): Term | null {
  const uniq = [...new Set(t)]
  if (EXCLUDES.some(([a, b]) => uniq.includes(a) && uniq.includes(b))) return null
  return uniq.filter(f => !uniq.some(g => g !== f && (IMPLIES[g] ?? []).includes(f)))
}

/**
 * The condition `action` leaves on the row for `actor`, once its permissions (and the `known`
 * facts) are folded in: [] = never, [[]] = always, else terms in the rule's order, none implied by
 * another (absorption: `owner` absorbs `owner AND writeShare`).
 */
export function normalize (actor: RuleActor, action: Action, known: KnownFacts = {}): Term[] {
  const dnf = (e: Expr): Term[] => {
    if (typeof e === 'string') {
      if (!isRowFact(e)) return actor.can(e) ? [[]] : []
      const v = known[e]
      return v === undefined ? [[e]] : v ? [[]] : []
    }
    if ('any' in e) return e.any.flatMap(dnf)
    if ('all' in e) return e.all.reduce<Term[]>((acc, x) => { const d = dnf(x); return acc.flatMap(a => d.map(b => [...a, ...b])) }, [[]])
    return dnf(DOCUMENT_RULE[e.rule])
  }
  const terms = dnf(DOCUMENT_RULE[action]).map(reduce).filter((t): t is Term => t !== null)
  const out: Term[] = []
  terms.forEach((t, i) => {
    const absorbed = terms.some((s, j) => {
      if (j === i) return false
      const c = closure(t)
      if (!s.every(f => c.has(f))) return false
      // t implies s: t goes, unless they are equivalent and t comes first
      const equivalent = t.every(f => closure(s).has(f))
      return !equivalent || j < i
    })
    if (!absorbed) out.push(t)
  })
  return out
}
