// `npm run docs:routes`: rewrites the route tables of README.md and docs/api.md from the app's
// OpenAPI document (between the routes:start/end markers).
import { readFileSync, writeFileSync } from 'node:fs'
import { loadConfig } from '../src/config.js'
import { buildApp } from '../src/build.js'
import { routeTable, withTable } from '../src/lib/route-table.js'

const app = await buildApp(loadConfig({}, {
  JWT_SECRET: 'docs-only-secret-docs-only-secret-00',
  STORAGE_URL_SECRET: 'docs-only-secret-docs-only-secret-01',
  INGESTION_SECRET: 'docs-only-secret-docs-only-secret-02',
  LOG_LEVEL: 'silent',
}))
try {
  await app.ready()
  const table = routeTable(app.swagger() as never)
  for (const file of ['README.md', 'docs/api.md']) {
    const next = withTable(readFileSync(file, 'utf8'), table)
    if (next === null) throw new Error(`${file} has no routes:start/routes:end markers`)
    writeFileSync(file, next)
    console.log(`${file}: route table written`)
  }
} finally {
  await app.close()
}
