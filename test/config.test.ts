import { test } from 'tap'
import { spawnSync } from 'node:child_process'
import { ConfigError, loadConfig } from '../src/config.js'

const base = { JWT_SECRET: 'x'.repeat(32), STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16) }

test('defaults apply and strings are converted', async (t) => {
  const c = loadConfig({ ...base, PORT: '4000', REGISTRATION_ENABLED: 'false', STORAGE_DRIVER: 's3' })
  t.equal(c.PORT, 4000)
  t.equal(c.REGISTRATION_ENABLED, false)
  t.equal(c.STORAGE_DRIVER, 's3')
  t.equal(c.RATE_LIMIT_MAX, 1000)
  t.equal(c.LOG_LEVEL, 'info')
})

test('empty values fall back to defaults', async (t) => {
  const c = loadConfig({ ...base, PORT: '', S3_ENDPOINT: '' })
  t.equal(c.PORT, 3000)
})

test('missing and bad values name the variable', async (t) => {
  t.throws(() => loadConfig({ STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16) }), { name: 'ConfigError', message: /JWT_SECRET: is required/ })
  const err = t.throws(() => loadConfig({ ...base, PORT: 'eighty', STORAGE_DRIVER: 'ftp', DATABASE_URL: 'postgres://x' })) as unknown as ConfigError
  t.ok(err instanceof ConfigError)
  const text = err.problems.join('\n')
  t.match(text, /PORT/)
  t.match(text, /STORAGE_DRIVER/)
  t.match(text, /DATABASE_URL/)
  t.throws(() => loadConfig({ ...base, JWT_SECRET: 'short' }), /JWT_SECRET/)
  t.throws(() => loadConfig({ ...base, RATE_LIMIT_MAX: '0' }), /RATE_LIMIT_MAX/)
})

test('the server refuses to start on bad config, naming the variable', async (t) => {
  const res = spawnSync(process.execPath, ['--import=tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH ?? '', JWT_SECRET: 'too-short', STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16) },
    encoding: 'utf8',
    timeout: 30000,
    cwd: new URL('..', import.meta.url).pathname,
  })
  t.equal(res.status, 1, 'exit code 1')
  t.match(res.stderr, /JWT_SECRET/)
})
