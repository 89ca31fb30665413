import { and, eq, gt } from 'drizzle-orm'
import type { Db } from '../db.js'
import { documentShares, users } from '../../drizzle/schema/index.js'
import { isId } from '../lib/ids.js'
import { decodeIdCursor, pageOf } from '../lib/pagination.js'
import { documentSubject, recordEvent } from './webhooks/outbox.js'

/** A document's shares: one user's read or write access to one document. */

/**
 * A document's shares, a page at a time, by user id (the primary key's order, so each page is one
 * index range); the cursor is the last user id, encoded like the users list's.
 */
export async function listShares (db: Db, documentId: string, q: { limit: number, cursor?: string }) {
  const conds = [eq(documentShares.documentId, documentId)]
  if (q.cursor !== undefined) conds.push(gt(documentShares.userId, decodeIdCursor(q.cursor)))
  const rows = await db.select().from(documentShares).where(and(...conds)).orderBy(documentShares.userId).limit(q.limit + 1)
  const page = pageOf(rows, q.limit, r => r.userId)
  return { items: page.items.map(r => ({ userId: r.userId, access: r.access as 'read' | 'write', createdAt: r.createdAt.toISOString() })), nextCursor: page.nextCursor }
}

export async function userExists (db: Db, userId: string): Promise<boolean> {
  if (!isId(userId)) return false
  const rows = await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).limit(1)
  return rows.length === 1
}

/** Creates or changes a share; returns the previous access (null when new). */
export async function putShare (db: Db, documentId: string, userId: string, access: 'read' | 'write'): Promise<{ previous: 'read' | 'write' | null, createdAt: Date }> {
  return await db.transaction(async (tx) => {
    const [old] = await tx.select().from(documentShares).where(and(eq(documentShares.documentId, documentId), eq(documentShares.userId, userId))).for('update')
    const shared = async (previous: 'read' | 'write' | null, createdAt: Date) => {
      if (previous !== access) await recordEvent(tx, { type: 'document.shared', subject: documentSubject(documentId), data: { documentId, userId, access, previous, createdAt: createdAt.toISOString() } })
      return { previous, createdAt }
    }
    if (old !== undefined) {
      await tx.update(documentShares).set({ access }).where(and(eq(documentShares.documentId, documentId), eq(documentShares.userId, userId)))
      return await shared(old.access as 'read' | 'write', old.createdAt)
    }
    const createdAt = new Date()
    await tx.insert(documentShares).values({ documentId, userId, access, createdAt })
    return await shared(null, createdAt)
  })
}

export async function deleteShare (db: Db, documentId: string, userId: string): Promise<boolean> {
  const [res] = await db.delete(documentShares).where(and(eq(documentShares.documentId, documentId), eq(documentShares.userId, userId)))
  return res.affectedRows === 1
}
