import { PERMISSIONS, ROLES, type Permission, type Role } from '../constants.js'

export { PERMISSIONS, ROLES, type Permission, type Role }

const viewer: Permission[] = ['documents:read', 'ingestions:read']
const editor: Permission[] = [...viewer, 'documents:create', 'documents:update', 'documents:delete', 'documents:share', 'ingestions:trigger']

export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  viewer,
  editor,
  admin: [...PERMISSIONS],
}

export const isPermission = (p: string): p is Permission => (PERMISSIONS as readonly string[]).includes(p)
export const isRole = (r: string): r is Role => (ROLES as readonly string[]).includes(r)

/** The effective set: the role's defaults, plus grants, minus revokes (revokes win). */
export function effectivePermissions (role: string, grants: readonly string[], revokes: readonly string[]): Permission[] {
  const set = new Set<Permission>(isRole(role) ? ROLE_PERMISSIONS[role] : [])
  for (const g of grants) if (isPermission(g)) set.add(g)
  for (const r of revokes) if (isPermission(r)) set.delete(r)
  return PERMISSIONS.filter(p => set.has(p))
}

/**
 * What a route asks of the caller before any object is looked at: one permission, a list (any one
 * of them), or `{ all: [...] }` (every item, each a permission or a list of which any one will do).
 */
export type PermissionGate = Permission | readonly Permission[] | { readonly all: ReadonlyArray<Permission | readonly Permission[]> }

const clauses = (gate: PermissionGate): ReadonlyArray<readonly Permission[]> =>
  typeof gate === 'string' ? [[gate]] : 'all' in gate ? gate.all.map(c => typeof c === 'string' ? [c] : c) : [gate]

/** Whether a caller holding the permissions `can` says yes to passes `gate`. */
export const gateAllows = (gate: PermissionGate, can: (p: Permission) => boolean): boolean =>
  clauses(gate).every(any => any.some(can))

/** `documents:read`, `a or b`, `documents:read and (documents:share or documents:manage)`. */
export function describeGate (gate: PermissionGate): string {
  const all = clauses(gate)
  if (all.length === 1) return all[0]!.join(' or ')
  return all.map(any => any.length === 1 ? any[0]! : `(${any.join(' or ')})`).join(' and ')
}
