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
