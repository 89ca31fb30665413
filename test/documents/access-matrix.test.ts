import t from 'tap'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { createUser, type TestUser } from '../helper.js'
import { buildWith } from './helpers.js'
import { insertDocument, putShare, originalKey, setTrashed } from '../../src/domain/documents.js'
import { newId } from '../../src/lib/ids.js'

type Kind = 'own' | 'othersPrivate' | 'sharedRead' | 'sharedWrite' | 'internal'
type Action = 'read' | 'list' | 'download' | 'update' | 'share' | 'delete'
const KINDS: Kind[] = ['own', 'othersPrivate', 'sharedRead', 'sharedWrite', 'internal']

// Expected answers from API.md: role permissions gate first (403), then the document rule:
// invisible -> 404, visible but not writable/shareable -> 403. list: true = appears in the list.
const EXPECTED: Record<'viewer' | 'editor' | 'admin', Record<Kind, Record<Action, number | boolean>>> = {
  viewer: {
    own: { read: 200, list: true, download: 200, update: 403, share: 403, delete: 403 },
    othersPrivate: { read: 404, list: false, download: 404, update: 403, share: 403, delete: 403 },
    sharedRead: { read: 200, list: true, download: 200, update: 403, share: 403, delete: 403 },
    sharedWrite: { read: 200, list: true, download: 200, update: 403, share: 403, delete: 403 },
    internal: { read: 200, list: true, download: 200, update: 403, share: 403, delete: 403 },
  },
  editor: {
    own: { read: 200, list: true, download: 200, update: 200, share: 200, delete: 204 },
    othersPrivate: { read: 404, list: false, download: 404, update: 404, share: 404, delete: 404 },
    sharedRead: { read: 200, list: true, download: 200, update: 403, share: 403, delete: 403 },
    sharedWrite: { read: 200, list: true, download: 200, update: 200, share: 403, delete: 204 },
    internal: { read: 200, list: true, download: 200, update: 403, share: 403, delete: 403 },
  },
  admin: {
    own: { read: 200, list: true, download: 200, update: 200, share: 200, delete: 204 },
    othersPrivate: { read: 200, list: true, download: 200, update: 200, share: 200, delete: 204 },
    sharedRead: { read: 200, list: true, download: 200, update: 200, share: 200, delete: 204 },
    sharedWrite: { read: 200, list: true, download: 200, update: 200, share: 200, delete: 204 },
    internal: { read: 200, list: true, download: 200, update: 200, share: 200, delete: 204 },
  },
}

async function makeDoc (app: FastifyInstance, ownerId: string, visibility: 'private' | 'internal'): Promise<string> {
  const id = newId()
  await app.storage.put(originalKey(id), Readable.from([Buffer.from(`content of ${id}`)]))
  await insertDocument(app.db, { id, ownerId, title: `doc ${id}`, description: null, filename: 'f.txt', mimeType: 'text/plain', size: 47, sha256: '0'.repeat(64), visibility, tags: [] })
  return id
}

async function listAll (app: FastifyInstance, user: TestUser, query: string): Promise<string[]> {
  const ids: string[] = []
  let cursor: string | null = null
  do {
    const res = await app.inject({ url: `/documents?${query.includes('limit=') ? '' : 'limit=100&'}${query}${cursor !== null ? `&cursor=${cursor}` : ''}`, headers: user.headers })
    if (res.statusCode !== 200) throw new Error(res.body)
    const page = res.json() as { items: Array<{ id: string }>, nextCursor: string | null }
    ids.push(...page.items.map(i => i.id))
    cursor = page.nextCursor
  } while (cursor !== null)
  return ids
}

t.test('viewer/editor/admin x own/others/shared(read|write)/internal/private x read/list/download/update/share/delete', async (t) => {
  const app = await buildWith(t, 'local')
  const other = await createUser(app, 'editor')
  const third = await createUser(app, 'viewer')
  for (const role of ['viewer', 'editor', 'admin'] as const) {
    const me = await createUser(app, role)
    const docs: Record<Kind, string> = {
      own: await makeDoc(app, me.id, 'private'),
      othersPrivate: await makeDoc(app, other.id, 'private'),
      sharedRead: await makeDoc(app, other.id, 'private'),
      sharedWrite: await makeDoc(app, other.id, 'private'),
      internal: await makeDoc(app, other.id, 'internal'),
    }
    await putShare(app.db, docs.sharedRead, me.id, 'read')
    await putShare(app.db, docs.sharedWrite, me.id, 'write')
    const listed = new Set([...await listAll(app, me, `ownerId=${other.id}`), ...await listAll(app, me, `ownerId=${me.id}`)])

    for (const kind of KINDS) {
      const id = docs[kind]
      const exp = EXPECTED[role][kind]
      const tag = `${role} ${kind}`
      const read = await app.inject({ url: `/documents/${id}`, headers: me.headers })
      t.equal(read.statusCode, exp.read, `${tag} read`)
      t.equal(listed.has(id), exp.list, `${tag} list`)
      t.equal(listed.has(id), read.statusCode === 200, `${tag}: list agrees with the single read`)
      const dl = await app.inject({ url: `/documents/${id}/content`, headers: me.headers })
      t.equal(dl.statusCode, exp.download, `${tag} download`)
      const upd = await app.inject({ method: 'PATCH', url: `/documents/${id}`, headers: me.headers, payload: { title: 'changed' } })
      t.equal(upd.statusCode, exp.update, `${tag} update`)
      const share = await app.inject({ method: 'PUT', url: `/documents/${id}/shares/${third.id}`, headers: me.headers, payload: { access: 'read' } })
      t.equal(share.statusCode, exp.share, `${tag} share`)
      const del = await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: me.headers })
      t.equal(del.statusCode, exp.delete, `${tag} delete`)
      for (const r of [read, dl, upd, share, del]) {
        if (r.statusCode >= 400) t.equal(r.json().code, r.statusCode === 404 ? 'not_found' : 'forbidden', `${tag}: error code`)
      }
    }
  }
})

t.test('lists never show what single reads refuse (trash included)', async (t) => {
  const app = await buildWith(t, 'local')
  const owner = await createUser(app, 'editor')
  const writer = await createUser(app, 'editor')
  const reader = await createUser(app, 'viewer')
  const stranger = await createUser(app, 'viewer')
  const internal = await makeDoc(app, owner.id, 'internal')
  const shared = await makeDoc(app, owner.id, 'private')
  const secret = await makeDoc(app, owner.id, 'private')
  await putShare(app.db, shared, writer.id, 'write')
  await putShare(app.db, shared, reader.id, 'read')
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${shared}`, headers: owner.headers })).statusCode, 204)
  for (const u of [owner, writer, reader, stranger]) {
    for (const trashed of [false, true]) {
      const ids = await listAll(app, u, `ownerId=${owner.id}&trashed=${trashed}`)
      for (const id of [internal, shared, secret]) {
        const read = await app.inject({ url: `/documents/${id}`, headers: u.headers })
        const inThisList = read.statusCode === 200 && (read.json().deletedAt !== null) === trashed
        t.equal(ids.includes(id), inThisList, `${u.role} ${u.id.slice(-4)} trashed=${trashed} ${id === internal ? 'internal' : id === shared ? 'shared' : 'secret'}`)
      }
    }
  }
  // a trashed document: the owner and the write-sharer may see and restore it; the read-sharer may not see it
  t.equal((await app.inject({ url: `/documents/${shared}`, headers: reader.headers })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: `/documents/${shared}/restore`, headers: reader.headers })).statusCode, 403, 'viewer lacks documents:delete')
  t.equal((await app.inject({ url: `/documents/${shared}`, headers: writer.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/documents/${shared}/restore`, headers: writer.headers })).statusCode, 200)
  t.equal((await app.inject({ url: `/documents/${shared}`, headers: reader.headers })).statusCode, 200, 'visible again once restored')
  // permanent delete: not for the write-sharer, yes for the owner once trashed, and for admins anytime
  await app.inject({ method: 'DELETE', url: `/documents/${shared}`, headers: owner.headers })
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${shared}?permanent=true`, headers: writer.headers })).statusCode, 403)
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${shared}?permanent=true`, headers: owner.headers })).statusCode, 204)
  const admin = await createUser(app, 'admin')
  t.equal((await app.inject({ method: 'DELETE', url: `/documents/${secret}?permanent=true`, headers: admin.headers })).statusCode, 204)
  t.equal((await app.inject({ url: `/documents/${secret}`, headers: admin.headers })).statusCode, 404)
})

t.test('list: each visible document once, newest first, whatever the page size (owned, internal and shared overlap)', async (t) => {
  const app = await buildWith(t, 'local')
  const me = await createUser(app, 'editor')
  const other = await createUser(app, 'editor')
  const admin = await createUser(app, 'admin')
  const marker = `union${newId().replaceAll('-', '')}`
  const doc = async (ownerId: string, visibility: 'private' | 'internal', opts: { shareWithMe?: 'read' | 'write', trashed?: boolean, title?: string } = {}): Promise<string> => {
    const id = newId()
    await insertDocument(app.db, { id, ownerId, title: opts.title ?? `${marker} ${id}`, description: null, filename: 'f.txt', mimeType: 'text/plain', size: 1, sha256: '0'.repeat(64), visibility, tags: ['union'] })
    if (opts.shareWithMe !== undefined) await putShare(app.db, id, me.id, opts.shareWithMe)
    if (opts.trashed === true) await setTrashed(app.db, id, true)
    return id
  }
  const ownedInternal = await doc(me.id, 'internal')
  const ownedShared = await doc(me.id, 'private', { shareWithMe: 'write' })
  const internalShared = await doc(other.id, 'internal', { shareWithMe: 'read' })
  const sharedRead = await doc(other.id, 'private', { shareWithMe: 'read' })
  const invisible = await doc(other.id, 'private')
  const ownedPrivate = await doc(me.id, 'private')
  const othersInternal = await doc(other.id, 'internal')
  const sharedWrite = await doc(other.id, 'private', { shareWithMe: 'write' })
  const untitled = await doc(other.id, 'internal', { title: 'no marker' })
  const trashedOwnedShared = await doc(me.id, 'internal', { shareWithMe: 'write', trashed: true })
  const trashedWrite = await doc(other.id, 'internal', { shareWithMe: 'write', trashed: true })
  await doc(other.id, 'internal', { shareWithMe: 'read', trashed: true })
  await doc(other.id, 'internal', { trashed: true })

  const visible = [sharedWrite, othersInternal, ownedPrivate, sharedRead, internalShared, ownedShared, ownedInternal]
  for (const limit of [1, 2, 3, 100]) {
    t.same(await listAll(app, me, `q=${marker}&limit=${limit}`), visible, `limit ${limit}`)
  }
  t.same(await listAll(app, me, `q=${marker}&limit=2&trashed=true`), [trashedWrite, trashedOwnedShared], 'trash: mine and write-shared, once each')
  t.same(await listAll(app, me, `q=${marker}&ownerId=${other.id}&limit=1`), [sharedWrite, othersInternal, sharedRead, internalShared])
  t.same(await listAll(app, me, `tag=union&ownerId=${other.id}&limit=2`), [untitled, sharedWrite, othersInternal, sharedRead, internalShared], 'tag filter, across branches')
  t.same(await listAll(app, admin, `q=${marker}&limit=3`), [sharedWrite, othersInternal, ownedPrivate, invisible, sharedRead, internalShared, ownedShared, ownedInternal], 'documents:manage sees everything')
})
