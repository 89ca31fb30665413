import { existsSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/** Every environment variable Quire reads, with its default. One schema, validated at boot. */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
  DATABASE_URL: Type.String({ pattern: '^mysql://', default: 'mysql://root@127.0.0.1:3306/quire' }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  DATABASE_REPLICA_URL: Type.String({ pattern: '^$|^mysql://', default: '', description: 'a read replica of DATABASE_URL (GTID replication) for the list and search reads; empty = every read on the primary' }),
  DATABASE_REPLICA_MAX_WAIT_MS: Type.Integer({ minimum: 1, maximum: 10_000, default: 250, description: 'a list waits this long for the replica to catch up with the primary, then reads the primary' }),
  DATABASE_REPLICA_RETRY_MS: Type.Integer({ minimum: 100, default: 5000, description: 'a replica that failed or lagged is left alone this long (lists read the primary), then tried again' }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  REDIS_CLUSTER_NODES: Type.String({ default: '', pattern: '^(\\s*[^,\\s]+:\\d+\\s*(,\\s*[^,\\s]+:\\d+\\s*)*)?$', description: 'Redis Cluster: comma-separated host:port seed nodes (user, password and TLS from REDIS_URL); empty = a single Redis at REDIS_URL' }),
  REDIS_PREFIX: Type.String({ default: 'quire', pattern: '^[^{}]*$' }),
  JWT_SECRET: Type.String({ minLength: 32 }),
  STORAGE_URL_SECRET: Type.String({ minLength: 32, description: 'signs local-storage URLs (/storage/<token>); its own secret, not JWT_SECRET' }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 30, default: 900, description: 'seconds' }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 60, default: 30 * 24 * 3600, description: 'seconds' }),
  BCRYPT_COST: Type.Integer({ minimum: 4, maximum: 15, default: 12 }),
  REGISTRATION_ENABLED: Type.Boolean({ default: true }),
  LOGIN_MAX_ATTEMPTS: Type.Integer({ minimum: 1, default: 10, description: 'failed logins per window, per IP and per account' }),
  LOGIN_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 900 }),
  USER_LOOKUP_MAX: Type.Integer({ minimum: 1, default: 30, description: 'GET /users/lookup calls per window, per caller (hits and misses alike)' }),
  USER_LOOKUP_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 900 }),
  ADMIN_EMAIL: Type.Optional(Type.String()),
  ADMIN_PASSWORD: Type.Optional(Type.String()),
  CORS_ORIGINS: Type.String({ default: '', description: 'comma-separated origins; empty = CORS off, * = any' }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 1000 }),
  RATE_LIMIT_WINDOW: Type.Integer({ minimum: 1000, default: 60000, description: 'milliseconds' }),
  API_KEY_MAX_TTL_DAYS: Type.Integer({ minimum: 0, default: 365, description: 'longest lifetime of an API key, days; 0 = keys may never expire' }),
  API_KEY_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 1000, description: 'requests per window, per API key (besides the per-IP RATE_LIMIT_MAX)' }),
  API_KEY_RATE_LIMIT_WINDOW: Type.Integer({ minimum: 1000, default: 60000, description: 'milliseconds' }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 1024 * 1024, description: 'bytes, JSON bodies' }),
  TRUST_PROXY: Type.Boolean({ default: false }),
  PUBLIC_URL: Type.String({ default: '', description: 'base URL of this API as seen by clients and the ingestion backend; unset: the listening address, http://HOST:PORT (0.0.0.0 and :: as 127.0.0.1)' }),
  STORAGE_DRIVER: Type.Union([Type.Literal('local'), Type.Literal('s3')], { default: 'local' }),
  STORAGE_DIR: Type.String({ default: './data/storage' }),
  S3_BUCKET: Type.String({ default: 'quire' }),
  S3_REGION: Type.String({ default: 'us-east-1' }),
  S3_ENDPOINT: Type.String({ default: '' }),
  S3_PUBLIC_ENDPOINT: Type.String({ default: '', description: 'endpoint in pre-signed URLs handed to API clients, when they reach S3 at another address than Quire does (docker compose: http://localhost:8333)' }),
  S3_ACCESS_KEY_ID: Type.String({ default: '' }),
  S3_SECRET_ACCESS_KEY: Type.String({ default: '' }),
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: true }),
  UPLOAD_MAX_BYTES: Type.Integer({ minimum: 1, default: 1024 * 1024 * 1024 }),
  UPLOAD_ALLOWED_TYPES: Type.String({ default: '*/*', description: 'comma-separated MIME patterns, e.g. image/*,application/pdf' }),
  UPLOAD_URL_TTL: Type.Integer({ minimum: 10, default: 3600 }),
  QUOTA_DEFAULT_BYTES: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'storage quota of a user without one of their own (PATCH /users/:id quotaBytes), bytes; 0 = unlimited' }),
  DOWNLOAD_URL_TTL: Type.Integer({ minimum: 10, default: 300 }),
  QUOTA_SHARED_RESERVE_MAX_BYTES: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'the most bytes one user may hold in unfinished uploads against the quota of another user whose documents they write to (a write share, documents:manage); unset = UPLOAD_MAX_BYTES (one largest upload at a time); 0 = no cap. Owners without a quota are not capped' })),
  TRASH_RETENTION_DAYS: Type.Integer({ minimum: 0, default: 30 }),
  VERSIONS_KEEP: Type.Integer({ minimum: 1, maximum: 10000, default: 20 }),
  THUMBNAIL_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 0, default: 300_000, description: 'how often the worker queues again the thumbnail of documents left processing over 5 min without a live job (lost to a crash or a Redis restart); 0 = never (tests sharing one database)' }),
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 0, default: 365 }),
  CLAMD_URL: Type.String({ default: '', pattern: '^$|^(tcp|unix)://', description: 'clamd for malware scanning (tcp://host:port or unix:///path); empty = no scanning' }),
  SCAN_FAIL_OPEN: Type.Boolean({ default: false, description: 'when clamd cannot be reached: true = the document becomes ready unscanned (logged and audited); false = it waits in `scanning`' }),
  SCAN_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 180_000, description: 'clamd may go this long without taking a byte or, after the last one, without answering; keep it above clamd\'s MaxScanTime (default 120 s)' }),
  SCAN_RETRY_MS: Type.Integer({ minimum: 10, default: 5_000, description: 'first retry delay of a scan whose clamd was unreachable (doubling)' }),
  SCAN_RETRY_MAX_MS: Type.Integer({ minimum: 10, default: 300_000, description: 'the longest delay between two scan retries' }),
  INGESTION_URL: Type.String({ default: 'http://127.0.0.1:8081/ingest' }),
  INGESTION_SECRET: Type.String({ minLength: 16 }),
  INGESTION_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 30000 }),
  INGESTION_MAX_ATTEMPTS: Type.Integer({ minimum: 1, default: 5 }),
  INGESTION_BACKOFF_MS: Type.Integer({ minimum: 1, default: 2000 }),
  INGESTION_CALLBACK_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 15 * 60 * 1000 }),
  INGESTION_RECOVERY_INTERVAL_MS: Type.Integer({ minimum: 0, default: 30_000, description: 'how often the worker sweeps for ingestions whose job was lost; 0 = never (tests sharing one database)' }),
  INGESTION_RECOVERY_GRACE_MS: Type.Integer({ minimum: 1000, default: 60_000, description: 'the recovery sweep leaves rows younger than this alone (their trigger request or worker may still be busy with them)' }),
  SCHEDULE_CHECK_INTERVAL_MS: Type.Integer({ minimum: 1000, default: 60_000, description: 'worker: how often it checks that its repeatable schedules still exist in Redis (a Redis that lost its data, an eviction) and re-creates them' }),
  INGESTION_CONCURRENCY: Type.Integer({ minimum: 1, default: 20 }),
  AUTO_REINGEST: Type.Boolean({ default: true, description: 'a new version of a document that is in the index is sent to the backend again' }),
  INGESTION_RATE_MAX: Type.Integer({ minimum: 0, default: 0, description: 'dispatches per second to the backend, 0 = unlimited' }),
  WORKER_CONCURRENCY: Type.Integer({ minimum: 1, default: 4 }),
  WORKER_LOCK_MS: Type.Integer({ minimum: 1000, default: 30000, description: 'BullMQ job lock; a crashed worker\'s jobs are picked up again after about this long' }),
  WORKER_METRICS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: 'worker process: serve GET /metrics (job outcomes, event loop, DB pool) on this port of HOST; 0 = off' }),
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false, description: 'allow webhook URLs that resolve to loopback, private, link-local or metadata addresses (tests, local setups)' }),
  WEBHOOK_RETRY_HOURS: Type.Number({ exclusiveMinimum: 0, maximum: 24 * 30, default: 24, description: 'a webhook delivery is retried for this long, then given up' }),
  WEBHOOK_BACKOFF_MS: Type.Integer({ minimum: 1, default: 10_000, description: 'first retry delay of a webhook delivery; doubles per attempt, with jitter' }),
  WEBHOOK_BACKOFF_MAX_MS: Type.Integer({ minimum: 1, default: 3_600_000, description: 'longest delay between two attempts of a webhook delivery' }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000, description: 'one webhook attempt: connect, send and answer within this long' }),
  WEBHOOK_CONCURRENCY: Type.Integer({ minimum: 1, default: 50, description: 'webhook attempts one worker process runs at once' }),
  WEBHOOK_ENDPOINT_CONCURRENCY: Type.Integer({ minimum: 1, default: 8, description: 'attempts in flight to one endpoint, across all workers' }),
  WEBHOOK_LOG_RETENTION_DAYS: Type.Integer({ minimum: 0, default: 30, description: 'settled webhook deliveries (with their attempts and events) are deleted after this many days; 0 = kept forever' }),
  WEBHOOK_RELAY_INTERVAL_MS: Type.Integer({ minimum: 0, default: 1000, description: 'how often the worker moves new webhook events from the outbox to the queue; 0 = never' }),
  WEBHOOK_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 0, default: 60_000, description: 'how often the relay looks for pending webhook deliveries whose job Redis lost (a restart without persistence) and queues them again; 0 = never' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 10000 }),
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 20000, description: 'a client must have sent its complete request headers within this long (408 and close)' }),
  HEALTH_READY_CACHE_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1000, description: 'GET /health/ready: probes that arrive while a check runs, or within this long after it, get its result (a flood of the public route costs the database, Redis and storage one check per interval); 0 = only concurrent probes share' }),
  HTTP_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 120000, description: 'a socket with no byte in either direction for this long is closed (a stalled body, a client that stopped reading); 0 = off' }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 3600000, description: 'the whole request (headers and body) must have arrived within this long; a generous cap for large uploads; 0 = off' }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 72000, description: 'an idle keep-alive connection is closed after this long (above the load balancer\'s own idle timeout)' }),
})

/** The schema's values, with the derived defaults `loadConfig` fills in always present. */
export type Config = Static<typeof ConfigSchema> & { QUOTA_SHARED_RESERVE_MAX_BYTES: number }

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

/**
 * Builds the config from an environment-like object. Empty strings count as unset, so
 * `KEY=` in a .env file falls back to the default. Throws ConfigError naming every bad variable;
 * with NODE_ENV=production also every secret left at a value published in this repository.
 */
export function loadConfig (env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {}
  // Whole numbers are taken as written: TypeBox's conversion would read "1.5" or "1e300" as 1.
  const notWhole: string[] = []
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const v = env[key]
    if (v === undefined || v === '') continue
    if ((schema as { type?: string }).type === 'integer' && !/^\s*[+-]?\d+\s*$/.test(v)) notWhole.push(`${key}: expected a whole number, got ${JSON.stringify(v)}`)
    raw[key] = v
  }
  Object.assign(raw, overrides)
  const withDefaults = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, raw))
  const errors = [...Value.Errors(ConfigSchema, withDefaults)]
  if (errors.length > 0 || notWhole.length > 0) {
    const seen = new Set<string>(notWhole.map(p => p.slice(0, p.indexOf(':'))))
    const problems: string[] = [...notWhole]
    for (const e of errors) {
      const name = e.path.replace(/^\//, '') || '(root)'
      if (seen.has(name)) continue
      seen.add(name)
      problems.push(`${name}: ${e.value === undefined ? 'is required' : e.message}`)
    }
    throw new ConfigError(problems)
  }
  const config = withDefaults as Config
  if (config.PUBLIC_URL === '') config.PUBLIC_URL = listeningUrl(config.HOST, config.PORT)
  config.QUOTA_SHARED_RESERVE_MAX_BYTES ??= config.UPLOAD_MAX_BYTES
  if (env.NODE_ENV === 'production') {
    const problems = defaultSecrets(config)
    if (problems.length > 0) throw new ConfigError(problems)
  }
  return config
}

/** `http://HOST:PORT` as a client on this machine reaches it: a wildcard address becomes 127.0.0.1, IPv6 gets brackets. */
export function listeningUrl (host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '[::]' ? '127.0.0.1' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `http://${h}:${port}`
}

/**
 * Secret values shipped in .env.example and docker-compose.yml, now or before: a deployment that
 * kept one runs with a secret anyone can read. test/config.test.ts checks that every secret in
 * those two files is listed here.
 */
export const KNOWN_DEFAULT_SECRETS: ReadonlySet<string> = new Set([
  'dev-only-secret-change-me-0123456789abcdef', 'dev-only-ingestion-secret-0123456789', 'dev-only-storage-url-secret-change-me-0123',
  'compose-dev-secret-change-me-0123456789', 'compose-dev-ingestion-secret-0123', 'quire-secret', 'change-me-please', 'quire', 'root',
])

/** The variables holding a secret (passwords inside the URLs included), as `NAME: value` problems when one is a known default. */
function defaultSecrets (config: Config): string[] {
  const urlPassword = (url: string): string => {
    try {
      return decodeURIComponent(new URL(url).password)
    } catch {
      return ''
    }
  }
  const secrets: Array<[string, string | undefined]> = [
    ['JWT_SECRET', config.JWT_SECRET],
    ['STORAGE_URL_SECRET', config.STORAGE_URL_SECRET],
    ['INGESTION_SECRET', config.INGESTION_SECRET],
    ['S3_SECRET_ACCESS_KEY', config.S3_SECRET_ACCESS_KEY],
    ['ADMIN_PASSWORD', config.ADMIN_PASSWORD],
    ['DATABASE_URL', urlPassword(config.DATABASE_URL)],
    ['DATABASE_REPLICA_URL', urlPassword(config.DATABASE_REPLICA_URL)],
    ['REDIS_URL', urlPassword(config.REDIS_URL)],
  ]
  return secrets.filter(([, v]) => v !== undefined && KNOWN_DEFAULT_SECRETS.has(v))
    .map(([name]) => `${name}: is a published default (.env.example / docker-compose.yml); set a secret of your own, e.g. openssl rand -hex 32`)
}

/** Loads ./.env into process.env (without overriding) when present; entry points call this. */
export function loadDotEnv (path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path)
}

/** Entry points: `.env`, then the validated config; a bad or missing variable exits with its name. */
export function loadConfigOrExit (): Config {
  loadDotEnv()
  try {
    return loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }
}
