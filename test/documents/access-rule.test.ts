import t from 'tap'
import { randomBytes } from 'node:crypto'
import { and, inArray } from 'drizzle-orm'
import { build, createUser } from '../helper.js'
import { documents } from '../../drizzle/schema/index.js'
import { insertDocument, listDocuments, putShare, setTrashed } from '../../src/domain/documents.js'
import {
  accessOf, decide, factsOf, isReadable, loadDocumentFor, readableCondition, ruleCondition, ruleSql, triggerableSql, visibleCondition, writableCondition,
  type DocumentRuleAction,
} from '../../src/domain/document-access.js'
import { effectivePermissions, type Permission, type Role } from '../../src/domain/permissions.js'
import { checkedInsert } from '../../src/domain/ingestions/trigger.js'
import { batchWhere } from '../../src/domain/ingestions/batches.js'
import { newId } from '../../src/lib/ids.js'

// One table, every rendering of the document rule: the JS predicate (decide, accessOf, isReadable,
// loadDocumentFor) and each SQL fragment (drizzle conditions, raw fragments, the listing's UNION
// branches, the trigger's fragment), the SQL ones run against real rows.

type ActorKind = 'owner' | 'readShare' | 'writeShare' | 'otherReader' | 'noRead' | 'manager'
type When = boolean | 'live' | 'trashed' | 'internal' | 'internal&live'
const ACTIONS: DocumentRuleAction[] = ['read', 'write', 'share', 'present', 'restore', 'purge', 'purgeLive', 'trigger']

const ACTORS: Record<ActorKind, { role: Role, revokes?: Permission[], share: 'read' | 'write' | null }> = {
  owner: { role: 'editor', share: null },
  readShare: { role: 'viewer', share: 'read' },
  writeShare: { role: 'editor', share: 'write' },
  otherReader: { role: 'viewer', share: null },
  // a write share does not make a document visible without documents:read
  noRead: { role: 'editor', revokes: ['documents:read'], share: 'write' },
  manager: { role: 'admin', share: null },
}

const EXPECTED: Record<ActorKind, Record<DocumentRuleAction, When>> = {
  owner: { read: true, write: true, share: true, present: true, restore: 'trashed', purge: true, purgeLive: false, trigger: 'live' },
  readShare: { read: true, write: false, share: false, present: 'live', restore: false, purge: false, purgeLive: false, trigger: false },
  writeShare: { read: true, write: true, share: false, present: true, restore: 'trashed', purge: false, purgeLive: false, trigger: 'live' },
  otherReader: { read: 'internal', write: false, share: false, present: 'internal&live', restore: false, purge: false, purgeLive: false, trigger: false },
  noRead: { read: false, write: true, share: false, present: false, restore: false, purge: false, purgeLive: false, trigger: false },
  manager: { read: true, write: true, share: true, present: true, restore: 'trashed', purge: true, purgeLive: true, trigger: 'live' },
}

interface Doc { id: string, visibility: 'private' | 'internal', trashed: boolean }
function expected (w: When, d: Doc): boolean {
  switch (w) {
    case 'live': return !d.trashed
    case 'trashed': return d.trashed
    case 'internal': return d.visibility === 'internal'
    case 'internal&live': return d.visibility === 'internal' && !d.trashed
    default: return w
  }
}

t.test('the document rule: JS predicate and every SQL rendering agree with one table', async (t) => {
  const app = await build(t)
  const tag = `rule-${randomBytes(5).toString('hex')}`
  const users = Object.fromEntries(await Promise.all(Object.entries(ACTORS).map(async ([kind, a]) =>
    [kind, await createUser(app, a.role, { revokes: a.revokes ?? [] })]))) as Record<ActorKind, Awaited<ReturnType<typeof createUser>>>
  const actorOf = (kind: ActorKind) => {
    const perms = new Set(effectivePermissions(ACTORS[kind].role, [], ACTORS[kind].revokes ?? []))
    return { id: users[kind].id, can: (p: Permission) => perms.has(p) }
  }
  const docs: Doc[] = []
  for (const visibility of ['private', 'internal'] as const) {
    for (const trashed of [false, true]) {
      const id = newId()
      await insertDocument(app.db, { id, ownerId: users.owner.id, title: `rule ${id}`, description: null, filename: 'f.txt', mimeType: 'text/plain', size: 1, sha256: '0'.repeat(64), visibility, tags: [tag] })
      for (const [kind, a] of Object.entries(ACTORS)) if (a.share !== null) await putShare(app.db, id, users[kind as ActorKind].id, a.share)
      if (trashed) await setTrashed(app.db, id, true)
      docs.push({ id, visibility, trashed })
    }
  }
  const ids = docs.map(d => d.id)
  const rawIds = async (frag: { sql: string, params: string[] }): Promise<Set<string>> => {
    const [rows] = await app.db.$client.query(`SELECT d.id FROM documents d WHERE d.id IN (${ids.map(() => '?').join(', ')}) AND ${frag.sql}`, [...ids, ...frag.params]) as unknown as [Array<{ id: string }>]
    return new Set(rows.map(r => r.id))
  }
  const drizzleIds = async (cond: ReturnType<typeof visibleCondition>): Promise<Set<string>> =>
    new Set((await app.db.select({ id: documents.id }).from(documents).where(and(inArray(documents.id, ids), cond))).map(r => r.id))
  const listed = async (actor: ReturnType<typeof actorOf>, trashed: boolean): Promise<Set<string>> => {
    const page = await listDocuments(app.db, actor, { limit: 100, trashed, tag })
    return new Set(page.items.map(j => (JSON.parse(j) as { id: string }).id))
  }

  for (const kind of Object.keys(ACTORS) as ActorKind[]) {
    const actor = actorOf(kind)
    const share = ACTORS[kind].share
    const bySql = Object.fromEntries(await Promise.all(ACTIONS.map(async a => [a, { raw: await rawIds(ruleSql(actor, a)), drizzle: await drizzleIds(ruleCondition(actor, a)) }])))
    const named = { read: await drizzleIds(visibleCondition(actor)), write: await drizzleIds(writableCondition(actor)), present: await drizzleIds(readableCondition(actor)), trigger: await rawIds(triggerableSql(actor)) }
    const list = { live: await listed(actor, false), trash: await listed(actor, true) }
    // The SQL that runs: the trigger's checked INSERT ... SELECT and a bulk re-run's filter, both generated from the rule.
    const inserted = new Set<string>()
    for (const d of docs) {
      const ins = checkedInsert({ actorId: actor.id, can: actor.can })
      const now = new Date()
      const [res] = await app.db.$client.query(ins.sql, [newId(), d.id, 'matrix', '{}', actor.id, null, null, now, now, now, d.id, ...ins.params]) as unknown as [{ affectedRows: number }]
      if (res.affectedRows === 1) inserted.add(d.id)
    }
    await app.db.$client.query("DELETE FROM ingestions WHERE pipeline = 'matrix' AND requested_by = ?", [actor.id])
    const batched = await rawIds(batchWhere(actor, { tag }))
    for (const d of docs) {
      const label = `${kind} on ${d.visibility}${d.trashed ? ' trashed' : ''}`
      const row = { ownerId: users.owner.id, visibility: d.visibility, deletedAt: d.trashed ? new Date() : null }
      const facts = factsOf(actor.id, row, share)
      const access = accessOf(actor, row, share)
      for (const action of ACTIONS) {
        const want = expected(EXPECTED[kind][action], d)
        t.equal(decide(actor, action, facts), want, `${label}: decide ${action}`)
        t.equal(bySql[action]!.raw.has(d.id), want, `${label}: ruleSql ${action}`)
        t.equal(bySql[action]!.drizzle.has(d.id), want, `${label}: ruleCondition ${action}`)
        if (action === 'read' || action === 'write' || action === 'present' || action === 'trigger') t.equal(named[action].has(d.id), want, `${label}: named condition ${action}`)
        if (action === 'trigger') {
          t.equal(inserted.has(d.id), want, `${label}: the trigger's checked INSERT`)
          t.equal(batched.has(d.id), want, `${label}: a bulk re-run's filter`)
        }
      }
      const want = (a: DocumentRuleAction) => expected(EXPECTED[kind][a], d)
      t.same(access, { canRead: want('read'), canWrite: want('write'), canShare: want('share'), isOwner: kind === 'owner' }, `${label}: accessOf`)
      t.equal(isReadable(access, d.trashed), want('present'), `${label}: isReadable`)
      const found = await loadDocumentFor(app.db, actor, d.id, 'any')
      t.equal(found !== null && isReadable(found, found.doc.deletedAt !== null), want('present'), `${label}: loadDocumentFor`)
      // the listing: live documents that are present; the trash: those the actor may restore
      t.equal(list.live.has(d.id), want('present') && !d.trashed, `${label}: listed`)
      t.equal(list.trash.has(d.id), want('restore'), `${label}: in the trash listing`)
    }
  }
})
