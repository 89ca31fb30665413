import { startFauxqs } from 'fauxqs'
import { test } from 'tap'
import { and, eq } from 'drizzle-orm'
import { auditEvents, users } from '../drizzle/schema/index.js'
import { build, createUser, TEST_REDIS_URL, uniqueEmail } from './helper.js'
import { cli } from './cli-run.js'

test('create-admin reads the password from stdin or the environment, never from argv, and audits as cli', async (t) => {
  const app = await build(t, { REDIS_URL: TEST_REDIS_URL })

  const refused = await cli(['create-admin', '--email', uniqueEmail('cli'), '--password', 'a-long-password-1'])
  t.equal(refused.code, 1, '--password is refused')
  t.match(refused.stderr, /--password is not accepted/)

  const noPassword = await cli(['create-admin', '--email', uniqueEmail('cli')])
  t.equal(noPassword.code, 1, 'no TTY, no stdin flag, no env: refused with a hint')
  t.match(noPassword.stderr, /--password-stdin or set ADMIN_PASSWORD/)

  const email = uniqueEmail('Cli').toUpperCase()
  const made = await cli(['create-admin', '--email', ` ${email} `, '--password-stdin'], { stdin: 'stdin-password-123\n' })
  t.equal(made.code, 0, made.stderr)
  t.match(made.stdout, /admin created: [0-9a-f-]{36} </)
  t.notMatch(made.stdout + made.stderr, /stdin-password-123/, 'the password is never printed')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: email.toLowerCase(), password: 'stdin-password-123' } })
  t.equal(login.statusCode, 200, 'the admin logs in with the piped password')
  const [row] = await app.db.select().from(users).where(eq(users.email, email.toLowerCase()))
  t.equal(row?.role, 'admin')
  const [created] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'user.create'), eq(auditEvents.subject, `user:${row?.id ?? ''}`)))
  t.equal(created?.actorId, 'cli', 'audited with the actor cli')

  const fromEnv = await cli(['create-admin', '--email', uniqueEmail('cli')], { env: { ADMIN_PASSWORD: 'env-password-1234' } })
  t.equal(fromEnv.code, 0, fromEnv.stderr)

  const again = await cli(['create-admin', '--email', email], { env: { ADMIN_PASSWORD: 'env-password-1234' } })
  t.equal(again.code, 1, 'an existing user is left alone without --promote')
  t.match(again.stderr, /--promote/)
})

test('create-admin --promote makes an existing user an admin, at once for running API processes', async (t) => {
  const app = await build(t, { REDIS_URL: TEST_REDIS_URL })
  const editor = await createUser(app, 'editor')
  const before = await app.inject({ method: 'GET', url: '/users', headers: editor.headers })
  t.equal(before.statusCode, 403, 'an editor cannot list users')

  const res = await cli(['create-admin', '--email', editor.email.toUpperCase(), '--promote'], { env: { REDIS_PREFIX: app.config.REDIS_PREFIX } })
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, new RegExp(`promoted to admin: ${editor.id}`))
  t.equal(res.stderr, '', 'Redis was told')
  const after = await app.inject({ method: 'GET', url: '/users', headers: editor.headers })
  t.equal(after.statusCode, 200, 'the same session is an admin on its next request')
  const [audited] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'user.update'), eq(auditEvents.subject, `user:${editor.id}`)))
  t.equal(audited?.actorId, 'cli')
  t.same(audited?.payload, { changed: ['role'], role: 'admin', from: 'editor' })

  const twice = await cli(['create-admin', '--email', editor.email, '--promote'], { env: { REDIS_PREFIX: app.config.REDIS_PREFIX } })
  t.equal(twice.code, 0)
  t.match(twice.stdout, /already an admin/)
})

test('ensure-bucket creates the S3 bucket once, then finds it', async (t) => {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
  t.teardown(async () => await server.stop())
  const env = { S3_ENDPOINT: `http://127.0.0.1:${server.port}`, S3_BUCKET: 'quire-ensure', S3_ACCESS_KEY_ID: 'test', S3_SECRET_ACCESS_KEY: 'test' }
  const first = await cli(['ensure-bucket', '--wait', '5'], { env })
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /bucket quire-ensure created/)
  const second = await cli(['ensure-bucket'], { env })
  t.equal(second.code, 0, second.stderr)
  t.match(second.stdout, /bucket quire-ensure exists/)
  const down = await cli(['ensure-bucket', '--wait', '1'], { env: { ...env, S3_ENDPOINT: 'http://127.0.0.1:1' } })
  t.equal(down.code, 1, 'a server that never answers: exit 1 with a message')
  t.match(down.stderr, /did not answer in 1 s/)
})
