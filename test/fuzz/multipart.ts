// Hand-built multipart/form-data bodies, well-formed and hostile (truncated, bad boundaries, traversal filenames).
import fc from 'fast-check'
import { hostileString } from './arbitraries.js'

export interface Part { name: string, filename?: string, contentType?: string, data: Buffer | string }

/** A 1x1 PNG. */
export const TINY_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64')

export function encodeMultipart (parts: Part[], boundary: string): Buffer {
  const chunks: Buffer[] = []
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`
    if (p.filename !== undefined) head += `; filename="${p.filename}"`
    head += '\r\n'
    if (p.contentType !== undefined) head += `Content-Type: ${p.contentType}\r\n`
    chunks.push(Buffer.from(head + '\r\n', 'utf8'), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data, 'utf8'), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

export const TRAVERSAL_FILENAMES = [
  '../../etc/passwd', '..\\..\\..\\windows\\system32\\drivers\\etc\\hosts', '/etc/shadow', '....//....//etc/passwd', '%2e%2e%2fetc%2fpasswd',
  'a/../../b.txt', '.', '..', '', ' ', 'CON', 'nul.txt', 'a\u0000.png', 'evil.php\u0000.png', 'x"; name="file', 'x\r\nContent-Type: text/html',
  '\u202Egnp.exe', 'ｆｉｌｅ.png', 'A'.repeat(1000) + '.png', '.htaccess', '~/.ssh/id_rsa', 'file:///etc/passwd', '😀.png',
]

const fileData: fc.Arbitrary<Buffer | string> = fc.oneof(
  fc.constant(TINY_PNG),
  fc.constant(TINY_PNG.subarray(0, 20)),
  fc.constant('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n'),
  fc.constant('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
  fc.constant('MZ\x90\x00'),
  fc.constant(''),
  hostileString,
  fc.uint8Array({ maxLength: 4096 }).map(a => Buffer.from(a))
)

const filePart: fc.Arbitrary<Part> = fc.record({
  name: fc.oneof({ arbitrary: fc.constant('file'), weight: 6 }, { arbitrary: fc.constantFrom('File', 'files', 'file[]', 'title', ''), weight: 1 }),
  filename: fc.oneof({ arbitrary: fc.constantFrom('notes.txt', 'photo.png', 'report.pdf', 'data.csv'), weight: 3 }, { arbitrary: fc.constantFrom(...TRAVERSAL_FILENAMES), weight: 3 }, { arbitrary: hostileString, weight: 1 }),
  contentType: fc.option(fc.constantFrom('image/png', 'text/plain', 'application/pdf', 'application/x-msdownload', 'text/html', 'image/svg+xml', 'garbage', ''), { nil: undefined }),
  data: fileData,
})

const fieldPart: fc.Arbitrary<Part> = fc.record({
  name: fc.oneof({ arbitrary: fc.constantFrom('title', 'description', 'tags', 'visibility'), weight: 12 }, { arbitrary: fc.constantFrom('ownerId', '__proto__', 'version', 'id', ''), weight: 1 }, { arbitrary: hostileString.map(s => s.slice(0, 100)), weight: 1 }),
  data: fc.oneof(
    { arbitrary: fc.constantFrom('private', 'internal', 'public', 'A title', 'seed', 'x,y'), weight: 6 },
    { arbitrary: hostileString, weight: 3 },
    { arbitrary: fc.constant('w'.repeat(70 * 1024)), weight: 1 }
  ),
})

export interface MultipartCase { contentType: string, payload: Buffer, note: string }

/** Multipart bodies: valid-shaped ones, wrong parts, duplicate files, bad boundaries and truncated streams. */
export const multipartArb: fc.Arbitrary<MultipartCase> = fc.record({
  boundary: fc.oneof({ arbitrary: fc.stringMatching(/^[A-Za-z0-9-]{8,40}$/), weight: 8 }, { arbitrary: fc.constantFrom('-', 'a'.repeat(200), '"q"', 'x y'), weight: 1 }),
  header: fc.constantFrom('same', 'same', 'same', 'same', 'same', 'other', 'missing', 'quoted', 'empty', 'mixed'),
  parts: fc.oneof(
    { arbitrary: fc.tuple(fc.array(fieldPart, { maxLength: 3 }), filePart).map(([f, file]) => [...f, file]), weight: 6 },
    { arbitrary: fc.array(fc.oneof(filePart, fieldPart), { maxLength: 6 }), weight: 3 },
    { arbitrary: fc.array(fieldPart, { minLength: 33, maxLength: 45 }), weight: 1 }
  ),
  cut: fc.option(fc.integer({ min: 1, max: 999 }).map(n => n / 1000), { nil: undefined, freq: 4 }),
  preamble: fc.option(fc.constantFrom('junk before\r\n', '\r\n\r\n', '--'), { nil: undefined, freq: 6 }),
}).map(({ boundary, header, parts, cut, preamble }) => {
  let payload = encodeMultipart(parts, boundary)
  if (preamble !== undefined) payload = Buffer.concat([Buffer.from(preamble), payload])
  if (cut !== undefined) payload = payload.subarray(0, Math.floor(payload.length * cut))
  const contentType = {
    same: `multipart/form-data; boundary=${boundary}`,
    other: 'multipart/form-data; boundary=not-the-boundary',
    missing: 'multipart/form-data',
    quoted: `multipart/form-data; boundary="${boundary}"`,
    empty: 'multipart/form-data; boundary=',
    mixed: `multipart/mixed; boundary=${boundary}`,
  }[header] ?? ''
  const files = parts.filter(p => p.filename !== undefined)
  const note = `${parts.length} parts (${files.length} files: ${files.map(f => JSON.stringify(f.filename).slice(0, 60)).join(', ')}), header ${header}${cut !== undefined ? `, cut at ${payload.length} bytes` : ''}`
  return { contentType, payload, note }
})
