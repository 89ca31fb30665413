import type { Permission } from '../constants.js'

/**
 * Who a domain function acts for: the user's id and a permission check (an authenticated
 * Principal, src/domain/auth-state.ts, is one; so is a test's or the CLI's stand-in).
 */
export interface Actor {
  id: string
  can: (p: Permission) => boolean
}
