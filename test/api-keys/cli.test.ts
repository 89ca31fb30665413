import { test } from 'tap'
import { and, eq } from 'drizzle-orm'
import { auditEvents } from '../../drizzle/schema/index.js'
import { build, createUser, TEST_REDIS_URL } from '../helper.js'
import { cli } from '../cli-run.js'

// issue 21: `npm run cli -- create-api-key` bootstraps CI without the API.

test('create-api-key prints a working key (stdout: the key alone), within the user\'s permissions, audited as cli', async (t) => {
  const app = await build(t, { REDIS_URL: TEST_REDIS_URL })
  const editor = await createUser(app, 'editor')
  const res = await cli(['create-api-key', '--email', editor.email.toUpperCase(), '--name', 'ci', '--scopes', 'documents:read,documents:create', '--expires-in-days', '7'])
  t.equal(res.code, 0, res.stderr)
  const key = res.stdout.trim()
  t.match(key, /^qk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
  t.notOk(res.stderr.includes(key.slice(20)), 'the secret only on stdout')
  const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${key}` } })
  t.equal(me.statusCode, 200)
  t.same(me.json().permissions, ['documents:read', 'documents:create'])
  const listed = (await app.inject({ url: '/api-keys', headers: editor.headers })).json().items[0]
  t.match(listed, { name: 'ci', createdBy: 'cli', status: 'active' })
  t.ok(new Date(listed.expiresAt).getTime() < Date.now() + 8 * 86400_000, '--expires-in-days')
  const [audited] = await app.db.select().from(auditEvents).where(and(eq(auditEvents.action, 'api_key.create'), eq(auditEvents.subject, `api_key:${listed.id as string}`)))
  t.equal(audited?.actorId, 'cli')
  t.notOk(JSON.stringify(audited).includes(key.slice(20)))

  const beyond = await cli(['create-api-key', '--email', editor.email, '--name', 'x', '--scopes', 'users:manage'])
  t.equal(beyond.code, 1)
  t.match(beyond.stderr, /not held: users:manage/)
  t.equal(beyond.stdout, '')
  const unknown = await cli(['create-api-key', '--email', editor.email, '--name', 'x', '--scopes', 'documents:fly'])
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /unknown scopes: documents:fly/)
  const tooLong = await cli(['create-api-key', '--email', editor.email, '--name', 'x', '--scopes', 'documents:read', '--expires-in-days', '400'])
  t.equal(tooLong.code, 1)
  t.match(tooLong.stderr, /API_KEY_MAX_TTL_DAYS/)
})
