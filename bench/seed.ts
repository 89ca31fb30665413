import { createHash, randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { newId } from '../src/lib/ids.js'
import { hashPassword } from '../src/domain/passwords.js'

export const BENCH_PASSWORD = 'bench-password'
export const benchEmail = (i: number): string => `bench-${i}@bench.test`

export interface Seeded {
  userIds: string[]
  /** documents owned by user 0 (the benchmark's client), newest last */
  ownDocIds: string[]
  documents: number
  shares: number
  internal: number
}

/**
 * Fills the bench database with fast multi-row INSERTs (no API): `users` users (user 0 is the
 * client, an editor), `docs` documents spread round-robin over the owners, 1 in 20 `internal`,
 * one tag each, and a share on every 10th document. Rows only: no stored objects.
 */
export async function seed (databaseUrl: string, opts: { users: number, docs: number, bcryptCost: number }): Promise<Seeded> {
  const conn = await mysql.createConnection({ uri: databaseUrl, timezone: 'Z' })
  try {
    const now = new Date()
    const hash = await hashPassword(BENCH_PASSWORD, opts.bcryptCost)
    const userIds = Array.from({ length: opts.users }, () => newId())
    const userRows = userIds.map((id, i) => [id, benchEmail(i), `Bench ${i}`, hash, i === 0 || i % 3 === 0 ? 'editor' : 'viewer', '[]', '[]', 0, 1, now, now])
    await conn.query('INSERT INTO users (id, email, name, password_hash, role, grants, revokes, disabled, auth_version, created_at, updated_at) VALUES ?', [userRows])

    const ownDocIds: string[] = []
    let internal = 0
    let shares = 0
    const sha = createHash('sha256').update('bench').digest('hex')
    const BATCH = 2000
    for (let start = 0; start < opts.docs; start += BATCH) {
      const docRows: unknown[][] = []
      const tagRows: unknown[][] = []
      const shareRows: unknown[][] = []
      for (let i = start; i < Math.min(opts.docs, start + BATCH); i++) {
        const id = newId()
        const owner = i % opts.users
        if (owner === 0) ownDocIds.push(id)
        const visibility = i % 20 === 7 ? 'internal' : 'private'
        if (visibility === 'internal') internal++
        const tag = `tag-${i % 50}`
        const created = new Date(now.getTime() - (opts.docs - i) * 1000)
        docRows.push([id, userIds[owner], `Bench document ${i}`, i % 3 === 0 ? `Description of bench document ${i}` : null,
          `doc-${i}.txt`, 'text/plain', 1000 + (i % 5000), sha, 'ready', visibility, JSON.stringify([tag]),
          `documents/${id}/original`, '{}', 1, created, created])
        tagRows.push([id, tag])
        if (i % 10 === 3) {
          shareRows.push([id, userIds[(i * 7 + 1) % opts.users], i % 20 === 3 ? 'write' : 'read', created])
          shares++
        }
      }
      await conn.query('INSERT INTO documents (id, owner_id, title, description, filename, mime_type, size, sha256, status, visibility, tags, storage_key, metadata, version, created_at, updated_at) VALUES ?', [docRows])
      await conn.query('INSERT INTO document_versions (document_id, number, storage_key, size, sha256, mime_type, filename, created_at, created_by) VALUES ?',
        [docRows.map(r => [r[0], 1, r[11], r[6], r[7], r[5], r[4], r[14], r[1]])])
      await conn.query('INSERT INTO document_tags (document_id, tag) VALUES ?', [tagRows])
      if (shareRows.length > 0) await conn.query('INSERT INTO document_shares (document_id, user_id, access, created_at) VALUES ?', [shareRows])
    }
    await conn.query('ANALYZE TABLE documents, document_tags, document_shares, users')
    return { userIds, ownDocIds, documents: opts.docs, shares, internal }
  } finally {
    await conn.end()
  }
}

/** Drops the bench database (the runner's cleanup). */
export async function dropDatabase (databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl)
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''))
  if (!/^[\w$-]*bench[\w$-]*$/.test(name)) throw new Error(`refusing to drop "${name}": not a bench database`)
  url.pathname = '/'
  const conn = await mysql.createConnection({ uri: url.toString() })
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
  } finally {
    await conn.end()
  }
}

export const randomHex = (n: number): string => randomBytes(n).toString('hex')
