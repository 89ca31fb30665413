import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { test } from 'tap'
import { eq } from 'drizzle-orm'
import { users } from '../../drizzle/schema/index.js'
import { assertErrorShape, build, createUser, privateDatabase, uniqueEmail } from '../helper.js'

// "The last admin" is a property of the whole database, so these tests get a database of their own.
const DATABASE_URL = await privateDatabase('admins')

test('admin bootstrap from ADMIN_EMAIL/ADMIN_PASSWORD: once, even with two processes starting together', async (t) => {
  const ADMIN_EMAIL = uniqueEmail('boot')
  const overrides = { DATABASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD: 'bootstrap password' }
  const [a] = await Promise.all([build(t, overrides), build(t, overrides)])
  const admins = await a.db.select().from(users).where(eq(users.role, 'admin'))
  t.equal(admins.length, 1)
  t.equal(admins[0]?.email, ADMIN_EMAIL)
  const res = await a.inject({ method: 'POST', url: '/auth/login', payload: { email: ADMIN_EMAIL, password: 'bootstrap password' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().user.role, 'admin')
  // an admin exists now: another start with other values creates nothing
  const c = await build(t, { DATABASE_URL, ADMIN_EMAIL: uniqueEmail('other'), ADMIN_PASSWORD: 'another password' })
  t.equal((await c.db.select().from(users).where(eq(users.role, 'admin'))).length, 1)
})

test('CLI create-admin', async (t) => {
  const run = promisify(execFile)
  const email = uniqueEmail('cli')
  const env = { ...process.env, DATABASE_URL, BCRYPT_COST: '4', ADMIN_PASSWORD: 'cli password 1' }
  const out = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'create-admin', '--email', email.toUpperCase()], { env })
  t.match(out.stdout, /admin created/)
  const again = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'create-admin', '--email', email], { env }).catch((e: { code: number, stderr: string }) => e)
  t.equal((again as { code: number }).code, 1, 'existing email: exit 1')
  const app = await build(t, { DATABASE_URL })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'cli password 1' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().user.role, 'admin')
  // remove it again so the next test starts from one admin (the bootstrapped one)
  await app.db.delete(users).where(eq(users.email, email))
})

test('the last admin cannot be deleted, disabled, demoted or lose users:manage (409 last_admin)', async (t) => {
  const app = await build(t, { DATABASE_URL })
  // leave exactly one admin: this one
  await app.db.update(users).set({ role: 'viewer' }).where(eq(users.role, 'admin'))
  const a = await createUser(app, 'admin')
  for (const payload of [{ role: 'editor' }, { disabled: true }, { revokes: ['users:manage'] }]) {
    assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/users/${a.id}`, headers: a.headers, payload }), 409, 'last_admin')
  }
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${a.id}`, headers: a.headers }), 409, 'last_admin')
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${a.id}`, headers: a.headers, payload: { name: 'Still here', revokes: ['jobs:manage'] } })).statusCode, 200, 'other changes are fine')

  // two admins demoting each other at the same moment: exactly one succeeds
  const b = await createUser(app, 'admin')
  const [r1, r2] = await Promise.all([
    app.inject({ method: 'PATCH', url: `/users/${b.id}`, headers: a.headers, payload: { role: 'viewer' } }),
    app.inject({ method: 'PATCH', url: `/users/${a.id}`, headers: b.headers, payload: { role: 'viewer' } }),
  ])
  const codes = [r1.statusCode, r2.statusCode].sort()
  t.ok(codes[0] === 200 && (codes[1] === 409 || codes[1] === 403), `one wins, the other is refused (${codes.join(',')})`)
  const admins = await app.db.select().from(users).where(eq(users.role, 'admin'))
  t.equal(admins.length, 1, 'one admin left')

  // with a second admin, the first one may go
  const survivor = admins[0]?.id === a.id ? a : b
  const c = await createUser(app, 'admin')
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${survivor.id}`, headers: c.headers })).statusCode, 204)
  assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${c.id}`, headers: c.headers }), 409, 'last_admin')
})

test('the last admin cannot get round the rule with its id in upper case (issue 18)', async (t) => {
  const app = await build(t, { DATABASE_URL })
  await app.db.update(users).set({ role: 'viewer' }).where(eq(users.role, 'admin'))
  const a = await createUser(app, 'admin')
  for (const id of [a.id.toUpperCase(), a.id.slice(0, 8).toUpperCase() + a.id.slice(8)]) {
    for (const payload of [{ role: 'editor' }, { disabled: true }, { revokes: ['users:manage'] }]) {
      assertErrorShape(t, await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: a.headers, payload }), 409, 'last_admin')
    }
    assertErrorShape(t, await app.inject({ method: 'DELETE', url: `/users/${id}`, headers: a.headers }), 409, 'last_admin')
  }
  const admins = await app.db.select().from(users).where(eq(users.role, 'admin'))
  t.same(admins.map(u => u.id), [a.id], 'still exactly this admin')
})
