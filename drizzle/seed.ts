// `npm run db:seed`: fills a development database with users of each role, real small documents of several
// types (uploaded through POST /documents, so they get sha256, sniffed types and thumbnail jobs the normal way),
// shares, internal documents and ingestions. Safe to re-run: existing users and seeded documents are skipped.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import sharp from 'sharp'
import { and, eq, inArray, isNull } from 'drizzle-orm'
import { loadConfig, loadDotEnv, type Config } from '../src/config.js'
import { buildApp } from '../src/build.js'
import { runMigrations } from './migrate.js'
import { documents, documentTags } from './schema/index.js'
import { findUserByEmail, insertUser } from '../src/domain/users.js'
import { hashPassword } from '../src/domain/passwords.js'
import { createSession } from '../src/domain/sessions.js'
import type { Role } from '../src/domain/permissions.js'

const SEED_TAG = 'seed'
const PASSWORD = process.env.SEED_PASSWORD ?? 'quire-dev-password'

interface SeedUser { email: string, name: string, role: Role }
const USERS: SeedUser[] = [
  { email: 'admin@quire.local', name: 'Ada Admin', role: 'admin' },
  { email: 'editor@quire.local', name: 'Eddie Editor', role: 'editor' },
  { email: 'editor2@quire.local', name: 'Erin Editor', role: 'editor' },
  { email: 'viewer@quire.local', name: 'Vic Viewer', role: 'viewer' },
]

interface SeedFile { title: string, filename: string, contentType: string, data: Buffer, owner: string, visibility: 'private' | 'internal', tags: string[], description: string }

/** A minimal, valid one-page PDF (correct xref offsets) with a line of text. */
function pdf (text: string): Buffer {
  const stream = `BT /F1 24 Tf 72 720 Td (${text.replace(/[()\\]/g, '\\$&')}) Tj ET`
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${Buffer.byteLength(stream)} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ]
  let out = '%PDF-1.4\n'
  const offsets: number[] = []
  objects.forEach((o, i) => { offsets.push(Buffer.byteLength(out)); out += `${i + 1} 0 obj\n${o}\nendobj\n` })
  const xref = Buffer.byteLength(out)
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map(o => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return Buffer.from(out, 'latin1')
}

/** A picture with a gradient and a caption, in the given format. */
async function picture (caption: string, format: 'png' | 'jpeg' | 'webp', hue: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="500">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="hsl(${hue},70%,55%)"/><stop offset="1" stop-color="hsl(${(hue + 80) % 360},70%,35%)"/>
    </linearGradient></defs>
    <rect width="800" height="500" fill="url(#g)"/>
    <circle cx="640" cy="120" r="70" fill="rgba(255,255,255,0.35)"/>
    <text x="40" y="460" font-family="sans-serif" font-size="42" fill="white">${caption}</text>
  </svg>`
  return await sharp(Buffer.from(svg)).toFormat(format).toBuffer()
}

async function files (): Promise<SeedFile[]> {
  const csv = ['date,region,units,revenue', ...Array.from({ length: 24 }, (_, i) => `2026-${String((i % 12) + 1).padStart(2, '0')}-01,${['north', 'south', 'east', 'west'][i % 4] ?? 'north'},${10 + i * 3},${(1000 + i * 137.5).toFixed(2)}`)].join('\n') + '\n'
  const json = JSON.stringify({ service: 'quire', version: 1, features: { uploads: true, ingestion: true }, limits: { maxUploadMb: 1024 } }, null, 2) + '\n'
  const notes = '# Meeting notes\n\n- Ship the ingestion dashboard\n- Review retention policy (30 days in trash)\n- Next sync: Thursday\n'
  return [
    { title: 'Company logo', filename: 'logo.png', contentType: 'image/png', data: await picture('Quire', 'png', 210), owner: 'editor@quire.local', visibility: 'internal', tags: ['brand', 'image'], description: 'The logo in PNG' },
    { title: 'Team offsite photo', filename: 'offsite.jpg', contentType: 'image/jpeg', data: await picture('Offsite 2026', 'jpeg', 20), owner: 'editor@quire.local', visibility: 'private', tags: ['photos'], description: 'JPEG from the offsite' },
    { title: 'Product banner', filename: 'banner.webp', contentType: 'image/webp', data: await picture('Now with ingestion', 'webp', 300), owner: 'editor2@quire.local', visibility: 'internal', tags: ['brand', 'image'], description: 'WebP banner' },
    { title: 'Quarterly report', filename: 'q1-report.pdf', contentType: 'application/pdf', data: pdf('Quire quarterly report - Q1'), owner: 'editor@quire.local', visibility: 'private', tags: ['reports', 'finance'], description: 'A one-page PDF' },
    { title: 'Handbook', filename: 'handbook.pdf', contentType: 'application/pdf', data: pdf('Employee handbook'), owner: 'admin@quire.local', visibility: 'internal', tags: ['hr'], description: 'Internal handbook' },
    { title: 'Sales by region', filename: 'sales.csv', contentType: 'text/csv', data: Buffer.from(csv), owner: 'editor2@quire.local', visibility: 'private', tags: ['finance', 'data'], description: 'CSV export' },
    { title: 'Service settings', filename: 'settings.json', contentType: 'application/json', data: Buffer.from(json), owner: 'admin@quire.local', visibility: 'private', tags: ['config'], description: 'JSON document' },
    { title: 'Meeting notes', filename: 'notes.txt', contentType: 'text/plain', data: Buffer.from(notes), owner: 'editor@quire.local', visibility: 'internal', tags: ['notes'], description: 'Plain text' },
  ]
}

function multipart (fields: Array<[string, string]>, file: { filename: string, data: Buffer, contentType: string }): { body: Buffer, contentType: string } {
  const boundary = `----quire-seed-${randomBytes(8).toString('hex')}`
  const parts: Buffer[] = fields.map(([name, value]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`))
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.filename}"\r\nContent-Type: ${file.contentType}\r\n\r\n`), file.data, Buffer.from(`\r\n--${boundary}--\r\n`))
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` }
}

async function seedUsers (app: FastifyInstance): Promise<Map<string, { id: string, authorization: string, created: boolean }>> {
  const out = new Map<string, { id: string, authorization: string, created: boolean }>()
  for (const u of USERS) {
    let row = await findUserByEmail(app.db, u.email)
    const created = row === undefined
    row ??= await insertUser(app.db, { email: u.email, name: u.name, role: u.role, passwordHash: await hashPassword(PASSWORD, app.config.BCRYPT_COST) })
    const s = await createSession(app, row.id, { ip: '127.0.0.1', userAgent: 'quire-seed' })
    out.set(u.email, { id: row.id, authorization: `Bearer ${s.accessToken}`, created })
  }
  return out
}

async function main (): Promise<void> {
  loadDotEnv()
  // The app's request log would bury the summary: only warnings and errors, unless asked for.
  const config = loadConfig(process.env, { LOG_LEVEL: (process.env.SEED_LOG_LEVEL || 'warn') as Config['LOG_LEVEL'] })
  await runMigrations(config.DATABASE_URL)
  const app = await buildApp(config)
  await app.ready()
  let seeded = new Map<string, { id: string, created: boolean }>()
  const summary = { usersCreated: 0, usersExisting: 0, documentsCreated: 0, documentsExisting: 0, shares: 0, ingestions: 0, skipped: [] as string[] }
  try {
    const users = await seedUsers(app)
    seeded = users
    for (const u of users.values()) u.created ? summary.usersCreated++ : summary.usersExisting++

    // Seeded documents already there (by owner and title), so a re-run adds nothing twice.
    const existing = await app.db.select({ id: documents.id, title: documents.title, ownerId: documents.ownerId }).from(documents)
      .innerJoin(documentTags, eq(documentTags.documentId, documents.id))
      .where(and(eq(documentTags.tag, SEED_TAG), isNull(documents.deletedAt), inArray(documents.ownerId, [...users.values()].map(u => u.id))))
    const docIds = new Map<string, string>(existing.map(d => [`${d.ownerId}/${d.title}`, d.id]))

    for (const f of await files()) {
      const owner = users.get(f.owner)
      if (owner === undefined) continue
      const key = `${owner.id}/${f.title}`
      if (docIds.has(key)) { summary.documentsExisting++; continue }
      const { body, contentType } = multipart([['title', f.title], ['description', f.description], ['visibility', f.visibility],
        ...[SEED_TAG, ...f.tags].map((t): [string, string] => ['tags', t])], f)
      const res = await app.inject({ method: 'POST', url: '/documents', headers: { authorization: owner.authorization, 'content-type': contentType }, payload: body })
      if (res.statusCode !== 201) throw new Error(`POST /documents (${f.filename}) answered ${res.statusCode}: ${res.body}`)
      const doc = res.json<{ id: string, mimeType: string, size: number }>()
      docIds.set(key, doc.id)
      summary.documentsCreated++
      console.log(`document ${f.filename.padEnd(16)} ${doc.mimeType.padEnd(18)} ${String(doc.size).padStart(7)} bytes  ${f.visibility}  ${f.owner}`)
    }

    const id = (owner: string, title: string): string | undefined => docIds.get(`${users.get(owner)?.id ?? ''}/${title}`)
    const shares: Array<[string, string, string, 'read' | 'write']> = [
      ['editor@quire.local', 'Quarterly report', 'viewer@quire.local', 'read'],
      ['editor@quire.local', 'Quarterly report', 'editor2@quire.local', 'write'],
      ['editor2@quire.local', 'Sales by region', 'editor@quire.local', 'read'],
      ['editor@quire.local', 'Team offsite photo', 'viewer@quire.local', 'read'],
    ]
    for (const [owner, title, to, access] of shares) {
      const docId = id(owner, title)
      const target = users.get(to)
      if (docId === undefined || target === undefined) continue
      const res = await app.inject({ method: 'PUT', url: `/documents/${docId}/shares/${target.id}`, headers: { authorization: users.get(owner)?.authorization ?? '' }, payload: { access } })
      if (res.statusCode === 404 && summary.skipped.length === 0) { summary.skipped.push('shares (PUT /documents/:id/shares/:userId answered 404)'); break }
      if (res.statusCode >= 300) throw new Error(`PUT share (${title} -> ${to}) answered ${res.statusCode}: ${res.body}`)
      summary.shares++
    }

    // The Idempotency-Key makes a re-run return the same ingestion instead of a new one.
    const ingest: Array<[string, string, string]> = [
      ['editor@quire.local', 'Quarterly report', 'default'], ['editor@quire.local', 'Meeting notes', 'default'],
      ['editor2@quire.local', 'Sales by region', 'tables'], ['admin@quire.local', 'Handbook', 'default'],
    ]
    for (const [owner, title, pipeline] of ingest) {
      const docId = id(owner, title)
      if (docId === undefined) continue
      const res = await app.inject({ method: 'POST', url: `/documents/${docId}/ingestions`, headers: { authorization: users.get(owner)?.authorization ?? '', 'idempotency-key': `seed-${docId}` }, payload: { pipeline } })
      if (res.statusCode === 404) { summary.skipped.push('ingestions (POST /documents/:id/ingestions answered 404: not built yet?)'); break }
      if (res.statusCode !== 202) throw new Error(`POST /documents/${docId}/ingestions answered ${res.statusCode}: ${res.body}`)
      summary.ingestions++
    }
    // The seed's own sessions are not left open.
    for (const u of users.values()) await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: u.authorization } })
  } finally {
    await app.close()
  }

  const line = '-'.repeat(72)
  console.log(`\n${line}\nSeed done on database ${new URL(config.DATABASE_URL).pathname.slice(1)}\n${line}`)
  console.log(`documents   ${summary.documentsCreated} uploaded, ${summary.documentsExisting} already there (tag "${SEED_TAG}")`)
  console.log(`shares      ${summary.shares} set`)
  console.log(`ingestions  ${summary.ingestions} requested (idempotent: a re-run adds none)`)
  for (const s of summary.skipped) console.log(`skipped     ${s}`)
  console.log(`\n${'email'.padEnd(24)}${'role'.padEnd(9)}${'id'.padEnd(38)}password`)
  for (const u of USERS) {
    const row = seeded.get(u.email)
    console.log(`${u.email.padEnd(24)}${u.role.padEnd(9)}${(row?.id ?? '-').padEnd(38)}${row?.created === true ? PASSWORD : '(unchanged: the user existed)'}`)
  }
  console.log('\nSet SEED_PASSWORD to choose the password of new users; SEED_LOG_LEVEL=info shows the request log.')
  console.log('Thumbnails and ingestion dispatch run in the worker: `npm run dev:worker`.')
  console.log(line)
}

main().catch((err: unknown) => {
  console.error('seed failed:', err instanceof Error ? err.message : err)
  process.exit(1)
})
