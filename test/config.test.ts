import { test } from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, ConfigSchema, loadConfig } from '../src/config.js'
import { ROOT, START_TIMEOUT_MS } from './helpers/processes.js'

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
  // whole numbers as written: not read as 1 from "1.5" or "1e300"
  for (const v of ['1.5', '1e300', '12abc', '0x10']) {
    t.throws(() => loadConfig({ ...base, DATABASE_POOL_SIZE: v }), { message: /DATABASE_POOL_SIZE: expected a whole number/ }, `DATABASE_POOL_SIZE=${v}`)
  }
  t.equal(loadConfig({ ...base, DATABASE_POOL_SIZE: ' 12 ' }).DATABASE_POOL_SIZE, 12, 'spaces around a whole number are fine')
})

test('the server refuses to start on bad config, naming the variable', async (t) => {
  const res = spawnSync(process.execPath, ['--import=tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH ?? '', JWT_SECRET: 'too-short', STORAGE_URL_SECRET: 's'.repeat(32), INGESTION_SECRET: 'y'.repeat(16) },
    encoding: 'utf8',
    timeout: START_TIMEOUT_MS,
    cwd: ROOT,
  })
  t.equal(res.status, 1, 'exit code 1')
  t.match(res.stderr, /JWT_SECRET/)
})

// issue 18: in production the process refuses secrets published in .env.example or docker-compose.yml.
const strong = {
  JWT_SECRET: 'a1'.repeat(32),
  STORAGE_URL_SECRET: 'b2'.repeat(32),
  INGESTION_SECRET: 'c3'.repeat(32),
  S3_SECRET_ACCESS_KEY: 'd4'.repeat(32),
  ADMIN_PASSWORD: 'e5'.repeat(16),
  NODE_ENV: 'production',
}
const SECRET_NAME = /SECRET|PASSWORD/

test('production refuses a published secret, naming the variable; other environments take it', async (t) => {
  t.ok(loadConfig(strong), 'real secrets load')
  t.throws(() => loadConfig({ ...strong, JWT_SECRET: 'dev-only-secret-change-me-0123456789abcdef' }), { name: 'ConfigError', message: /JWT_SECRET: is a published default/ })
  const err = t.throws(() => loadConfig({
    ...strong,
    STORAGE_URL_SECRET: 'dev-only-storage-url-secret-change-me-0123',
    INGESTION_SECRET: 'compose-dev-ingestion-secret-0123',
    DATABASE_URL: 'mysql://quire:quire@mysql:3306/quire',
  })) as unknown as ConfigError
  t.same(err.problems.map(p => p.split(':')[0]), ['STORAGE_URL_SECRET', 'INGESTION_SECRET', 'DATABASE_URL'])
  t.ok(loadConfig({ ...strong, NODE_ENV: 'development', JWT_SECRET: 'dev-only-secret-change-me-0123456789abcdef' }), 'development takes it')
})

/** `NAME=value` secrets of .env.example, `${NAME:-default}` and literal secrets of docker-compose.yml, passwords in URLs. */
function publishedSecrets (): Array<{ file: string, name: string, value: string }> {
  const found: Array<{ file: string, name: string, value: string }> = []
  const urlPassword = (file: string, name: string, value: string) => {
    const m = /^[a-z]+:\/\/[^:/@]*:([^@]*)@/.exec(value)
    if (m !== null && !m[1]!.startsWith('${')) found.push({ file, name, value: decodeURIComponent(m[1]!) })
  }
  for (const line of readFileSync(join(ROOT, '.env.example'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (m === null || m[2] === '') continue
    if (SECRET_NAME.test(m[1]!)) found.push({ file: '.env.example', name: m[1]!, value: m[2]! })
    urlPassword('.env.example', m[1]!, m[2]!)
  }
  // Line by line: `KEY: value` (environment entries) and every `${NAME:-default}` on the line.
  for (const line of readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').split('\n')) {
    if (line.trim().startsWith('#')) continue
    for (const m of line.matchAll(/\$\{([A-Z0-9_]+):?-([^}]*)\}/g)) {
      if (SECRET_NAME.test(m[1]!)) found.push({ file: 'docker-compose.yml', name: m[1]!, value: m[2]! })
    }
    const m = /^\s*([A-Z0-9_]+):\s*"?([^"#]*?)"?\s*$/.exec(line)
    if (m === null || m[2] === '') continue
    if (SECRET_NAME.test(m[1]!) && !m[2]!.includes('${') && !/^(yes|no|true|false)$/.test(m[2]!)) found.push({ file: 'docker-compose.yml', name: m[1]!, value: m[2]! })
    urlPassword('docker-compose.yml', m[1]!, m[2]!)
  }
  return found
}

test('every secret .env.example and docker-compose.yml publish is refused in production', async (t) => {
  const found = publishedSecrets()
  t.ok(found.some(f => f.name === 'JWT_SECRET'), 'the scan finds .env.example\'s secrets')
  t.same(found.filter(f => f.file === 'docker-compose.yml'), [], 'docker-compose.yml has no default secret: it asks for each')
  for (const { file, name, value } of found) {
    // Under its own name when Quire reads it, else as a secret Quire reads (MINIO_ROOT_PASSWORD is S3's).
    const target = name in strong || name === 'DATABASE_URL' || name === 'REDIS_URL' ? name : 'S3_SECRET_ACCESS_KEY'
    const env: Record<string, string> = { ...strong }
    env[target] = target.endsWith('_URL') ? `redis://u:${encodeURIComponent(value)}@h:6379` : value
    if (target === 'DATABASE_URL') env[target] = `mysql://u:${encodeURIComponent(value)}@h:3306/q`
    t.throws(() => loadConfig(env), { message: new RegExp(`${target}: is a published default`) }, `${file} ${name}`)
  }
})

test('the API and the worker refuse to start in production with a published secret, naming it', async (t) => {
  for (const entry of ['src/server.ts', 'src/worker.ts']) {
    const res = spawnSync(process.execPath, ['--import=tsx', entry], {
      env: { PATH: process.env.PATH ?? '', ...strong, INGESTION_SECRET: 'dev-only-ingestion-secret-0123456789' },
      encoding: 'utf8',
      timeout: START_TIMEOUT_MS,
      cwd: ROOT,
    })
    t.equal(res.status, 1, `${entry}: exit code 1`)
    t.match(res.stderr, /INGESTION_SECRET: is a published default/)
  }
})

// issue 23: PUBLIC_URL defaults to the listening address; an explicit value is kept.
test('PUBLIC_URL defaults to http://HOST:PORT, wildcard addresses as 127.0.0.1', async (t) => {
  t.equal(loadConfig({ ...base }).PUBLIC_URL, 'http://127.0.0.1:3000')
  t.equal(loadConfig({ ...base, HOST: '0.0.0.0', PORT: '4100' }).PUBLIC_URL, 'http://127.0.0.1:4100')
  t.equal(loadConfig({ ...base, HOST: '::', PORT: '4100' }).PUBLIC_URL, 'http://127.0.0.1:4100')
  t.equal(loadConfig({ ...base, HOST: '::1', PORT: '4100' }).PUBLIC_URL, 'http://[::1]:4100')
  t.equal(loadConfig({ ...base, HOST: 'localhost', PORT: '4100' }).PUBLIC_URL, 'http://localhost:4100')
  t.equal(loadConfig({ ...base, HOST: '0.0.0.0', PORT: '4100', PUBLIC_URL: 'https://quire.example.test' }).PUBLIC_URL, 'https://quire.example.test')
  t.equal(loadConfig({ ...base, PORT: '4100', PUBLIC_URL: '' }).PUBLIC_URL, 'http://127.0.0.1:4100', 'empty counts as unset')
})

// QUOTA_SHARED_RESERVE_MAX_BYTES follows UPLOAD_MAX_BYTES when unset (a writer may always have one
// largest upload in flight); an explicit value, 0 (no cap) included, is kept.
test('QUOTA_SHARED_RESERVE_MAX_BYTES defaults to UPLOAD_MAX_BYTES; 0 and explicit values are kept; bad ones name it', async (t) => {
  t.equal(loadConfig({ ...base }).QUOTA_SHARED_RESERVE_MAX_BYTES, 1024 * 1024 * 1024)
  t.equal(loadConfig({ ...base, UPLOAD_MAX_BYTES: '5000', QUOTA_SHARED_RESERVE_MAX_BYTES: '' }).QUOTA_SHARED_RESERVE_MAX_BYTES, 5000, 'empty counts as unset')
  t.equal(loadConfig({ ...base, QUOTA_SHARED_RESERVE_MAX_BYTES: '0' }).QUOTA_SHARED_RESERVE_MAX_BYTES, 0)
  t.equal(loadConfig({ ...base, QUOTA_SHARED_RESERVE_MAX_BYTES: '123456' }).QUOTA_SHARED_RESERVE_MAX_BYTES, 123456)
  for (const bad of ['-1', 'lots', '9007199254740992']) t.throws(() => loadConfig({ ...base, QUOTA_SHARED_RESERVE_MAX_BYTES: bad }), { name: 'ConfigError', message: /QUOTA_SHARED_RESERVE_MAX_BYTES/ }, bad)
})

test('every variable of the schema is documented in docs/configuration.md and listed in .env.example', async (t) => {
  const docs = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')
  const example = new Set(readFileSync(join(ROOT, '.env.example'), 'utf8').split('\n').map(l => /^#?\s*([A-Z0-9_]+)=/.exec(l)?.[1]).filter(Boolean))
  for (const name of Object.keys(ConfigSchema.properties)) {
    t.ok(docs.includes(`\`${name}\``), `docs/configuration.md: ${name}`)
    t.ok(example.has(name), `.env.example: ${name}`)
  }
})
