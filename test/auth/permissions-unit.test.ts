import t from 'tap'
import { effectivePermissions, PERMISSIONS, ROLE_PERMISSIONS } from '../../src/domain/permissions.js'
import { accessOf, isReadable } from '../../src/domain/document-access.js'
import { normalize } from '../../src/domain/access/document-rule.js'
import type { Permission } from '../../src/domain/permissions.js'

// Pure rules, no app: the effective permission set and the document rule's JS predicate.

t.test('effectivePermissions: role defaults, plus grants, minus revokes (revokes win), unknown names ignored', async (t) => {
  t.same(effectivePermissions('viewer', [], []), ['documents:read', 'ingestions:read'])
  t.same(effectivePermissions('viewer', ['audit:read', 'nope'], []), ['documents:read', 'ingestions:read', 'audit:read'])
  t.same(effectivePermissions('editor', ['users:manage'], ['users:manage', 'documents:share']), PERMISSIONS.filter(p => ROLE_PERMISSIONS.editor.includes(p) && p !== 'documents:share'))
  t.same(effectivePermissions('admin', [], []), [...PERMISSIONS])
  t.same(effectivePermissions('ghost', ['documents:read'], []), ['documents:read'], 'an unknown role has no defaults')
})

const actor = (id: string, perms: Permission[]) => ({ id, can: (p: Permission) => perms.includes(p) })

t.test('accessOf / isReadable follow the rule', async (t) => {
  const viewer = actor('v', ['documents:read'])
  t.same(accessOf(viewer, { ownerId: 'o', visibility: 'private' }, null), { canRead: false, canWrite: false, canShare: false, isOwner: false })
  t.same(accessOf(viewer, { ownerId: 'o', visibility: 'internal' }, null), { canRead: true, canWrite: false, canShare: false, isOwner: false })
  t.same(accessOf(viewer, { ownerId: 'o', visibility: 'private' }, 'write'), { canRead: true, canWrite: true, canShare: false, isOwner: false })
  const owner = actor('o', ['documents:read', 'documents:share'])
  t.same(accessOf(owner, { ownerId: 'o', visibility: 'private' }, null), { canRead: true, canWrite: true, canShare: true, isOwner: true })
  t.equal(isReadable({ canRead: true, canWrite: false }, true), false, 'a trashed document is gone for a reader')
  t.equal(isReadable({ canRead: true, canWrite: true }, true), true, 'and there for who may restore it')
  t.equal(isReadable({ canRead: false, canWrite: true }, false), false, 'writing alone does not make it visible')
})

t.test('normalize: permissions folded, terms absorbed', async (t) => {
  const reader = actor('r', ['documents:read'])
  t.same(normalize(reader, 'read'), [['owner'], ['internal'], ['shared']])
  t.same(normalize(reader, 'present', { live: false, trashed: true }), [['owner'], ['writeShare']], 'the trash: owner, or a write share')
  t.same(normalize(actor('m', ['documents:read', 'documents:manage']), 'present'), [[]], 'a manager: every row')
  t.same(normalize(actor('n', []), 'read'), [], 'no documents:read: no row')
})
