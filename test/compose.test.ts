// docker-compose.yml and the Dockerfiles, checked without a Docker daemon (our machines have none):
// the file parses, every variable it gives Quire is one Quire reads, every required variable is
// documented, everything it mounts, builds or copies exists, and every image is pinned.
import { test } from 'tap'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ConfigSchema } from '../src/config.js'

const ROOT = new URL('..', import.meta.url).pathname
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')
const composeText = read('docker-compose.yml')

interface Service {
  image?: string
  build?: string | { context?: string, dockerfile?: string }
  environment?: Record<string, string | number | boolean | null> | string[]
  command?: string | string[]
  volumes?: Array<string | { type?: string, source?: string }>
  depends_on?: Record<string, { condition?: string }> | string[]
  healthcheck?: unknown
}
const compose = parse(composeText) as { services: Record<string, Service>, volumes?: Record<string, unknown> }
const services = compose.services

const buildOf = (s: Service): { context: string, dockerfile: string } | undefined =>
  s.build === undefined ? undefined : typeof s.build === 'string' ? { context: s.build, dockerfile: 'Dockerfile' } : { context: s.build.context ?? '.', dockerfile: s.build.dockerfile ?? 'Dockerfile' }
const envNames = (s: Service): string[] => s.environment === undefined ? [] : Array.isArray(s.environment) ? s.environment.map(e => e.split('=')[0]!) : Object.keys(s.environment)
/** The services that run Quire's own image (API, worker, migrations, bucket init). */
const appServices = Object.entries(services).filter(([, s]) => buildOf(s)?.context === '.').map(([name]) => name)

/** Variables compose sets on the services that are not Quire: what each of them reads. */
const OTHER_SERVICE_ENV: Record<string, string[]> = {
  mysql: ['MYSQL_RANDOM_ROOT_PASSWORD', 'MYSQL_DATABASE', 'MYSQL_USER', 'MYSQL_PASSWORD'],
  // read by its entrypoint script, which writes SeaweedFS's S3 identity file
  seaweedfs: ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'],
  // examples/ingestion-service/server.py's flags default from these
  ingestion: ['INGESTION_SECRET', 'PORT', 'ASYNC_THRESHOLD'],
}

test('docker-compose.yml parses, and Quire\'s own services are the expected ones', async (t) => {
  t.type(services, 'object')
  t.same(appServices.sort(), ['api', 'bucket-init', 'migrate', 'worker'])
  for (const [name, s] of Object.entries(services)) {
    for (const dep of Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) t.ok(services[dep], `${name} depends on ${dep}, which exists`)
    for (const [dep, cond] of Array.isArray(s.depends_on) ? [] : Object.entries(s.depends_on ?? {})) {
      if (cond.condition === 'service_healthy') t.ok(services[dep]?.healthcheck !== undefined, `${name} waits for ${dep} to be healthy: ${dep} has a healthcheck`)
    }
  }
})

test('every variable compose gives Quire\'s services is one src/config.ts reads', async (t) => {
  const known = new Set(Object.keys(ConfigSchema.properties))
  for (const name of appServices) {
    const names = envNames(services[name]!)
    t.ok(names.length > 0, `${name} has an environment`)
    for (const v of names) t.ok(known.has(v), `${name}: ${v} is in ConfigSchema`)
  }
})

test('the other services get only the variables they read', async (t) => {
  const py = read('examples/ingestion-service/server.py')
  for (const [name, s] of Object.entries(services)) {
    if (appServices.includes(name)) continue
    const allowed = OTHER_SERVICE_ENV[name] ?? []
    for (const v of envNames(s)) t.ok(allowed.includes(v), `${name}: ${v} is expected (OTHER_SERVICE_ENV)`)
  }
  for (const v of OTHER_SERVICE_ENV.ingestion!) t.match(py, `os.environ.get("${v}"`, `server.py reads ${v}`)
  const script = JSON.stringify(services.seaweedfs?.command ?? '')
  for (const v of OTHER_SERVICE_ENV.seaweedfs!) t.match(script, `$$${v}`, `the seaweedfs entrypoint uses ${v}`)
})

test('every variable compose requires (:?) is in .env.example or documented at the top of docker-compose.yml', async (t) => {
  const example = new Set(read('.env.example').split('\n').map(l => /^([A-Z0-9_]+)=/.exec(l)?.[1]).filter(Boolean))
  const header = composeText.split('\n').filter((l, i, all) => all.slice(0, i + 1).every(x => x.startsWith('#'))).join('\n')
  const required = new Set([...composeText.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map(m => m[1]!))
  t.ok(required.size >= 5, 'the secrets are required variables')
  for (const v of required) t.ok(example.has(v) || header.includes(v), `${v} is listed`)
  // `$NAME` that compose itself must not interpolate (shell variables in commands) is written `$$NAME`.
  for (const [i, line] of composeText.split('\n').entries()) {
    if (line.trim().startsWith('#')) continue
    const bare = line.replace(/\$\$/g, '').match(/\$(?!\{)/)
    t.equal(bare, null, `line ${i + 1}: a bare $ is interpolated by compose; write $$ or \${VAR}`)
  }
})

test('everything compose mounts or builds exists', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    const build = buildOf(s)
    if (build !== undefined) {
      t.ok(statSync(join(ROOT, build.context)).isDirectory(), `${name}: build context ${build.context}`)
      t.ok(existsSync(join(ROOT, build.context, build.dockerfile)), `${name}: ${build.context}/${build.dockerfile}`)
    }
    for (const v of s.volumes ?? []) {
      const source = typeof v === 'string' ? v.split(':')[0]! : v.source ?? ''
      if (source.startsWith('.') || source.startsWith('/')) t.ok(existsSync(join(ROOT, source)), `${name}: mounts ${source}`)
      else t.ok(compose.volumes !== undefined && source in compose.volumes, `${name}: named volume ${source} is declared`)
    }
    // `node dist/<x>.js`: the file the build compiles from <x>.ts
    const cmd = Array.isArray(s.command) ? s.command : []
    if (cmd[0] === 'node' && cmd[1]?.startsWith('dist/') === true) t.ok(existsSync(join(ROOT, cmd[1].slice(5).replace(/\.js$/, '.ts'))), `${name}: ${cmd[1]} is built from source`)
  }
})

test('every image is pinned to a version', async (t) => {
  const pinned = (ref: string) => /:[^:/]*\d[^:/]*$/.test(ref) && !/:latest$/.test(ref)
  for (const [name, s] of Object.entries(services)) if (s.image !== undefined) t.ok(pinned(s.image), `${name}: ${s.image}`)
  for (const file of ['Dockerfile', 'examples/ingestion-service/Dockerfile']) {
    const stages = new Set<string>()
    for (const m of read(file).matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)) {
      if (!stages.has(m[1]!)) t.ok(pinned(m[1]!), `${file}: FROM ${m[1]}`)
      if (m[2] !== undefined) stages.add(m[2])
    }
  }
})

/** COPY instructions of a Dockerfile, by stage: sources (from the context unless --from) and destination. */
function copies (file: string): Array<{ stage: number, from?: string, sources: string[], dest: string }> {
  const out: Array<{ stage: number, from?: string, sources: string[], dest: string }> = []
  let stage = -1
  for (const line of read(file).split('\n')) {
    if (/^FROM\s/i.test(line)) stage++
    const m = /^COPY\s+(.*)$/i.exec(line.trim())
    if (m === null) continue
    const parts = m[1]!.split(/\s+/)
    const from = parts.find(p => p.startsWith('--from='))?.slice(7)
    const args = parts.filter(p => !p.startsWith('--'))
    out.push({ stage, from, sources: args.slice(0, -1), dest: args.at(-1)! })
  }
  return out
}

test('the Dockerfiles copy what exists, and everything the build needs', async (t) => {
  const ignored = read('.dockerignore').split('\n').map(l => l.trim().replace(/\/$/, '')).filter(l => l !== '' && !l.startsWith('#'))
  for (const [file, context] of [['Dockerfile', '.'], ['examples/ingestion-service/Dockerfile', 'examples/ingestion-service']] as const) {
    for (const c of copies(file).filter(c => c.from === undefined)) {
      for (const src of c.sources) t.ok(existsSync(join(ROOT, context, src)), `${file}: COPY ${src} exists`)
    }
  }
  const all = copies('Dockerfile')
  const buildStage = all.filter(c => c.stage === 0 && c.from === undefined).flatMap(c => c.sources)
  const tsBuild = JSON.parse(read('tsconfig.build.json')) as { extends?: string, include: string[] }
  const needed = ['package.json', 'package-lock.json', 'tsconfig.build.json', ...(tsBuild.extends !== undefined ? [tsBuild.extends.replace(/^\.\//, '')] : []), ...tsBuild.include]
  for (const n of needed) {
    t.ok(buildStage.includes(n), `the build stage copies ${n} (npm run build needs it)`)
    t.notOk(ignored.includes(n), `.dockerignore keeps ${n} in the context`)
  }
  const runtime = all.filter(c => c.stage === 1)
  const fromBuild = runtime.filter(c => c.from === 'build').flatMap(c => c.sources)
  for (const n of ['/app/node_modules', '/app/dist', '/app/drizzle/migrations']) t.ok(fromBuild.includes(n), `the runtime stage gets ${n}`)
  t.ok(existsSync(join(ROOT, 'drizzle/migrations')), 'drizzle/migrations exists')
})

test('the seaweedfs entrypoint writes an S3 identity file from the compose environment (run with sh, weed stubbed)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quire-compose-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'weed'), '#!/bin/sh\necho "weed $*"\n')
  chmodSync(join(dir, 'weed'), 0o755)
  const s = services.seaweedfs!
  t.same(s.command !== undefined && (s as { entrypoint?: string[] }).entrypoint, ['/bin/sh', '-c'])
  // What compose hands the shell: `$$` unescaped; the identity file goes to this test's directory.
  const script = (Array.isArray(s.command) ? s.command[0]! : s.command!).replace(/\$\$/g, '$').replaceAll('/tmp/s3.json', join(dir, 's3.json'))
  const run = (key: string, secret: string) => spawnSync('sh', ['-c', script], { env: { PATH: `${dir}:${process.env.PATH ?? ''}`, S3_ACCESS_KEY_ID: key, S3_SECRET_ACCESS_KEY: secret }, encoding: 'utf8' })
  const ok = run('quire', 'ab'.repeat(32))
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /^weed server .*-s3 -s3\.port=8333 -s3\.config=\S+s3\.json/)
  const identities = (JSON.parse(readFileSync(join(dir, 's3.json'), 'utf8')) as { identities: Array<{ credentials: unknown[], actions: string[] }> }).identities
  t.same(identities[0]!.credentials, [{ accessKey: 'quire', secretKey: 'ab'.repeat(32) }])
  t.ok(identities[0]!.actions.includes('Admin'), 'the identity may create the bucket')
  const bad = run('quire', 'a"b\\c')
  t.equal(bad.status, 1, 'a secret that would break the JSON is refused')
  t.match(bad.stderr, /S3_SECRET_ACCESS_KEY/)
})

// docker-compose.scale.yml: the override that runs a Redis Cluster and a MySQL read replica (docs/scaling.md).
test('docker-compose.scale.yml: a 3-master Redis Cluster and a GTID MySQL replica, wired into the API and the worker', async (t) => {
  const text = read('docker-compose.scale.yml')
  // Compose applies YAML merge keys (`<<: *cluster-node`).
  const scale = parse(text, { merge: true }) as { services: Record<string, Service & { hostname?: string }>, volumes?: Record<string, unknown> }
  const all = { ...services, ...scale.services }
  const known = new Set(Object.keys(ConfigSchema.properties))
  for (const name of ['api', 'worker']) {
    const env = scale.services[name]?.environment as Record<string, string>
    t.same(Object.keys(env).sort(), ['DATABASE_REPLICA_URL', 'REDIS_CLUSTER_NODES'], `${name}: the two settings that change`)
    for (const v of Object.keys(env)) t.ok(known.has(v), `${name}: ${v} is in ConfigSchema`)
    t.equal(env.REDIS_CLUSTER_NODES, 'redis-cluster-1:6379,redis-cluster-2:6379,redis-cluster-3:6379')
    t.match(env.DATABASE_REPLICA_URL, /^mysql:\/\/quire:\$\{MYSQL_PASSWORD:\?[^}]+\}@mysql-replica:3306\/quire$/)
  }
  for (const [name, s] of Object.entries(scale.services)) {
    if (s.image !== undefined) t.ok(/:[^:/]*\d[^:/]*$/.test(s.image), `${name}: ${s.image} is pinned`)
    for (const dep of Object.keys(s.depends_on ?? {})) t.ok(all[dep], `${name} depends on ${dep}, which exists`)
    for (const v of s.volumes ?? []) {
      const source = typeof v === 'string' ? v.split(':')[0]! : v.source ?? ''
      if (source.startsWith('.')) t.ok(existsSync(join(ROOT, source)), `${name}: mounts ${source}`)
      else t.ok(source in { ...compose.volumes, ...scale.volumes }, `${name}: named volume ${source} is declared`)
    }
  }
  const nodes = ['redis-cluster-1', 'redis-cluster-2', 'redis-cluster-3']
  for (const n of nodes) {
    t.equal(scale.services[n]?.hostname, n, `${n} announces its own name`)
    t.match(JSON.stringify(scale.services[n]?.command), /--cluster-enabled yes.*--maxmemory-policy noeviction/)
  }
  t.match(JSON.stringify(scale.services['redis-cluster-init']?.command), /--cluster create redis-cluster-1:6379 redis-cluster-2:6379 redis-cluster-3:6379 --cluster-replicas 0 --cluster-yes/)
  for (const db of ['mysql', 'mysql-replica']) t.match(JSON.stringify(scale.services[db]?.command), /--gtid-mode=ON.*--enforce-gtid-consistency=ON/, `${db}: GTIDs on`)
  t.match(read('docker/mysql-replica-init.sh'), /SOURCE_AUTO_POSITION=1/)
  t.match(read('docker/mysql-primary-init.sh'), /GRANT REPLICATION SLAVE/)
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim().startsWith('#')) continue
    t.equal(line.replace(/\$\$/g, '').match(/\$(?!\{)/), null, `line ${i + 1}: no bare $`)
  }
  const required = new Set([...text.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map(m => m[1]!))
  const header = text.split('\n').filter((l, i, lines) => lines.slice(0, i + 1).every(x => x.startsWith('#'))).join('\n')
  const example = read('.env.example')
  for (const v of required) t.ok(header.includes(v) || composeText.includes(v) || example.includes(`${v}=`), `${v} is explained`)
})
