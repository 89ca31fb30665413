import { test } from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

/*
 * The layers point down: routes → domain → lib/db/storage; worker → jobs → domain. Each rule
 * names a folder and what its files may not import (resolved relative imports, or package names).
 * A rule that breaks prints the file and the import.
 */
const ROOT = resolve(new URL('..', import.meta.url).pathname)

function filesUnder (dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) return filesUnder(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

/**
 * Every module a file imports: a path relative to the repository for relative imports, else the
 * package name. `runtimeOnly`: leave out `import type` (erased at build: no load-time coupling).
 */
function importsOf (file: string, runtimeOnly = false): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8')
  const statics = [...text.matchAll(/(?:^|\n)\s*(import|export)\s(type\s)?[^'"]*?from\s+'([^']+)'/g)].filter(m => !runtimeOnly || m[2] === undefined).map(m => m[3] ?? '')
  const specs = [...statics, ...[...text.matchAll(/import\('([^']+)'\)/g)].map(m => m[1] ?? '')]
  return specs.map(s => s.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), s)) : s)
}

const RULES: Array<{ layer: string, forbidden: RegExp, why: string, runtimeOnly?: boolean }> = [
  { layer: 'src/domain', forbidden: /^(fastify|@fastify\/|plugins\/|routes\/)/, why: 'the domain is framework-free' },
  { layer: 'src/domain', forbidden: /^(src\/jobs\/(?!catalogue\.js$)|bullmq$|sharp$)/, why: 'the domain enqueues through a typed function it is given; of the job system it loads only the catalogue (declarations)', runtimeOnly: true },
  { layer: 'src/lib', forbidden: /^(src\/(domain|jobs|storage|db)\/|plugins\/|routes\/)/, why: 'lib is the bottom layer' },
  { layer: 'src/storage', forbidden: /^(src\/(domain|jobs)\/|plugins\/|routes\/|fastify$)/, why: 'storage is below the domain' },
  { layer: 'src/scanning', forbidden: /^(src\/(domain|jobs|db|storage)\/|plugins\/|routes\/|fastify$)/, why: 'the scanner client is below the domain' },
  { layer: 'src/db', forbidden: /^(src\/(domain|jobs)\/|plugins\/|routes\/|fastify$)/, why: 'db is below the domain' },
  { layer: 'src/schemas', forbidden: /^(src\/(domain|jobs|db|storage)\/|plugins\/|routes\/)/, why: 'schemas import only lib and constants' },
  { layer: 'src/jobs', forbidden: /^(plugins\/|routes\/)/, why: 'jobs run in the worker, which has no routes' },
  { layer: 'routes', forbidden: /^(drizzle-orm|drizzle\/schema|src\/db\/|src\/db\.js|mysql2|ioredis$|src\/jobs\/processors|sharp$)/, why: 'no SQL, Redis or processors in route files: they call services' },
  { layer: 'plugins', forbidden: /^(routes\/|src\/jobs\/processors|sharp$)/, why: 'plugins are shared by the API and the worker; processors are the worker\'s' },
]

for (const rule of RULES) {
  test(`${rule.layer} imports only what lies below it${rule.runtimeOnly === true ? ' (at run time)' : ''}`, async (t) => {
    const bad = filesUnder(rule.layer).flatMap(file => importsOf(file, rule.runtimeOnly).filter(i => rule.forbidden.test(i)).map(i => `${file} → ${i}`))
    t.strictSame(bad, [], rule.why)
  })
}

test('the import scanner sees relative and package imports', async (t) => {
  const seen = importsOf('routes/admin/queues.ts')
  t.ok(seen.includes('src/jobs/queue-admin.js'), 'relative import resolved')
  t.ok(seen.includes('@fastify/type-provider-typebox'), 'package import kept')
})
