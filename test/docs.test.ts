import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { test } from 'tap'
import { build } from './helper.js'
import { routeTable, TABLE_END, TABLE_START } from '../src/lib/route-table.js'

const ROOT = resolve(import.meta.dirname, '..')
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => `docs/${f}`), 'bench/README.md', 'examples/ingestion-service/README.md']

test('the route tables of README.md and docs/api.md are the routes the app serves', async (t) => {
  const app = await build(t)
  const expected = routeTable(app.swagger() as never)
  t.ok(expected.split('\n').length > 40, 'the app has its routes')
  for (const file of ['README.md', 'docs/api.md']) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    const start = text.indexOf(TABLE_START)
    const end = text.indexOf(TABLE_END)
    t.ok(start >= 0 && end > start, `${file} has the table markers`)
    t.equal(text.slice(start + TABLE_START.length, end).trim(), expected, `${file}: every route, and only those (fix with npm run docs:routes)`)
  }
})

test('the documentation stands on its own: relative links resolve, nothing points outside the repo', async (t) => {
  for (const file of DOCS) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    t.notMatch(text, /\.\.\/shared\//, `${file} does not point at ../shared`)
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1] ?? ''
      if (/^[a-z]+:/.test(target)) continue
      t.ok(existsSync(resolve(ROOT, dirname(file), target)), `${file} links to ${target}`)
    }
  }
})
