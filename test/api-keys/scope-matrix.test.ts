import { test } from 'tap'
import { PERMISSIONS } from '../../src/domain/permissions.js'
import { newId } from '../../src/lib/ids.js'
import { build, createUser } from '../helper.js'
import { createDocument } from '../ingestion/helpers.js'
import { makeKey } from './helpers.js'

// issue 21: a key with one scope can do exactly what that scope allows, and nothing more. Driven
// from the permission list and the OpenAPI document's x-permission of every route, so a new
// permission or a new gated route is covered without touching this test.

/** `needs`: every clause, each met by any one of its permissions (`a and (b or c)`: [[a], [b, c]]). */
interface Op { method: string, path: string, needs: string[][] }

/** x-permission as src/domain/permissions.ts describeGate writes it. */
const parseGate = (access: string): string[][] => access.split(' and ').map(c => c.replace(/^\((.*)\)$/, '$1').split(' or '))
const passes = (needs: string[][], scopes: string[]): boolean => needs.every(any => any.some(p => scopes.includes(p)))

test('scope matrix: every single-scope key against every permission-gated route', async (t) => {
  const app = await build(t)
  // The owner has every permission: what a key may do is its scope alone.
  const owner = await createUser(app, 'admin')
  const doc = app.swagger() as { paths: Record<string, Record<string, { 'x-permission'?: string }>> }
  const ops: Op[] = []
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const access = op['x-permission'] ?? ''
      if (access === '' || access === 'public' || access.startsWith('signed in')) continue
      ops.push({ method: method.toUpperCase(), path, needs: parseGate(access) })
    }
  }
  const gated = new Set(ops.flatMap(o => o.needs.flat()))
  t.ok(ops.length >= 30, `${ops.length} gated operations`)

  // Objects the owner owns, fresh for each request (a permitted DELETE must not change the next probe).
  async function url (path: string): Promise<{ url: string, owned: boolean }> {
    let owned = false
    let out = path
    if (path.startsWith('/documents/{id}')) {
      out = out.replace('{id}', (await createDocument(app, owner.id)).id)
      owned = true
    }
    if (path.startsWith('/users/{id}')) {
      out = out.replace('{id}', (await createUser(app, 'viewer')).id)
      owned = true
    }
    out = out.replace('{userId}', owner.id).replace('{queue}', 'ingestion').replace(/\{[A-Za-z]+\}/g, () => newId())
    return { url: out, owned }
  }

  const call = async (op: Op, target: string, headers: { authorization: string }) =>
    await app.inject({ method: op.method as 'GET', url: target, headers, ...(op.method === 'GET' || op.method === 'DELETE' ? {} : { payload: {} }) })
  const keyFor = async (scopes: string[]) => (await makeKey(app, owner, { scopes })).headers

  const keys = new Map<string, { authorization: string }>()
  for (const p of PERMISSIONS) keys.set(p, (await makeKey(app, owner, { name: `only ${p}`, scopes: [p] })).headers)

  for (const p of PERMISSIONS) {
    const headers = keys.get(p)!
    for (const op of ops) {
      const target = await url(op.path)
      const res = await call(op, target.url, headers)
      const label = `${p}: ${op.method} ${op.path} (${res.statusCode})`
      if (passes(op.needs, [p])) {
        t.ok(res.statusCode !== 403 && res.statusCode !== 401, `allowed: ${label}`)
      } else if (target.owned || !op.path.includes('{')) {
        t.equal(res.statusCode, 403, `refused: ${label}`)
      } else {
        // an object nobody can see: 404 before the permission is looked at (no existence leak)
        t.ok(res.statusCode === 403 || res.statusCode === 404, `refused: ${label}`)
      }
    }
  }

  // Gates of more than one clause: a key with one permission of each passes, one clause short does not.
  for (const op of ops.filter(o => o.needs.length > 1)) {
    for (const choice of op.needs.reduce<string[][]>((acc, any) => acc.flatMap(a => any.map(p => [...a, p])), [[]])) {
      const res = await call(op, (await url(op.path)).url, await keyFor(choice))
      t.ok(res.statusCode !== 403 && res.statusCode !== 401, `allowed with ${choice.join(' + ')}: ${op.method} ${op.path} (${res.statusCode})`)
      for (const left of choice) {
        const short = await call(op, (await url(op.path)).url, await keyFor(choice.filter(p => p !== left)))
        t.equal(short.statusCode, 403, `refused without ${left}: ${op.method} ${op.path}`)
      }
    }
  }
  t.ok(ops.some(o => o.method === 'GET' && o.path === '/documents/{id}/shares' && o.needs.length === 2), 'listing shares declares both permissions it takes')

  // Permissions no route gates alone widen what the others reach: documents:manage (any document).
  const stranger = await createUser(app, 'editor')
  const theirs = await createDocument(app, stranger.id)
  const readOnly = await makeKey(app, owner, { scopes: ['documents:read'] })
  const readAll = await makeKey(app, owner, { scopes: ['documents:read', 'documents:manage'] })
  t.equal((await app.inject({ url: `/documents/${theirs.id}`, headers: owner.headers })).statusCode, 200, 'the admin owner reads it (documents:manage)')
  t.equal((await app.inject({ url: `/documents/${theirs.id}`, headers: readOnly.headers })).statusCode, 404, 'a documents:read key of theirs does not')
  t.equal((await app.inject({ url: `/documents/${theirs.id}`, headers: readAll.headers })).statusCode, 200, 'with documents:manage in its scopes it does')
  t.ok([...gated].every(g => (PERMISSIONS as readonly string[]).includes(g)), 'every gate is a known permission')
})
