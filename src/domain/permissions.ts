export const PERMISSIONS = [
  'documents:read', 'documents:create', 'documents:update', 'documents:delete', 'documents:share', 'documents:manage',
  'ingestions:read', 'ingestions:trigger', 'ingestions:manage',
  'users:manage', 'jobs:manage', 'audit:read',
] as const
export type Permission = typeof PERMISSIONS[number]

export const ROLES = ['viewer', 'editor', 'admin'] as const
export type Role = typeof ROLES[number]

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
