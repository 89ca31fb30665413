// fast-check arbitraries for hostile input: strings, ids, cursors, and values derived from JSON schemas.
import fc from 'fast-check'
import type { JsonSchema } from './operations.js'

export const NASTY_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\u0007\u001b[31m', '\r\n', 'null', 'undefined', 'true', '0', '-1', 'NaN', '1e309', '0x1f',
  '../../etc/passwd', '..\\..\\windows\\win.ini', '%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/etc/passwd', 'C:\\boot.ini', '....//....//',
  "' OR '1'='1", '" OR ""="', '1; DROP TABLE users; --', "'; SELECT SLEEP(5); --", '\\', '%', '%00', '%zz', '*', '?',
  '<script>alert(1)</script>', '$' + '{jndi:ldap://x/a}', '{{7*7}}', '__proto__', 'constructor', 'prototype', 'toString',
  '\uFEFF', '\u202Eevil', '\uD800', '\uDFFF', 'ｆｕｌｌｗｉｄｔｈ', 'Ω≈ç√∫', '😀'.repeat(40), 'é'.normalize('NFD'), 'a\tb\vc\fd',
  'a\r\nSet-Cookie: pwned=1', 'admin@quire.local', 'A'.repeat(256), 'A'.repeat(5000),
]

/** Any code point, including controls and lone surrogates' neighbours. */
export const anyString = (maxLength = 64): fc.Arbitrary<string> => fc.oneof(
  fc.string({ maxLength }),
  fc.string({ unit: 'binary', maxLength }),
  fc.string({ unit: 'grapheme', maxLength })
)

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...NASTY_STRINGS), weight: 4 },
  { arbitrary: anyString(), weight: 3 },
  { arbitrary: fc.integer({ min: 256, max: 20_000 }).map(n => 'x'.repeat(n)), weight: 1 },
  { arbitrary: fc.tuple(fc.constantFrom(...NASTY_STRINGS), anyString(16)).map(([a, b]) => a + b), weight: 1 }
)

/** Header-safe (latin1, no CR/LF/NUL): what a real HTTP parser would let through. */
export const headerString: fc.Arbitrary<string> = fc.oneof(
  hostileString.map(s => Array.from(s).filter(c => { const p = c.codePointAt(0) ?? 0; return p >= 0x20 && p <= 0xff && p !== 0x7f }).join('')),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }).map(s => Array.from(s).filter(c => c >= ' ' && c !== '\x7f').join(''))
)

const base64url = (s: string | Uint8Array): string => Buffer.from(s).toString('base64url')

/** Cursors: random strings, base64 of random bytes and JSON, plausible-looking ones with wrong types. */
export const cursorArb: fc.Arbitrary<string> = fc.oneof(
  hostileString,
  fc.uint8Array({ maxLength: 64 }).map(base64url),
  fc.jsonValue({ maxDepth: 2 }).map(v => base64url(JSON.stringify(v) ?? 'null')),
  fc.record({
    id: fc.oneof(fc.uuid(), fc.integer(), hostileString, fc.constant(null)),
    t: fc.oneof(fc.integer(), fc.string(), fc.date({ noInvalidDate: true }).map(d => d.toISOString()), fc.constant(null), fc.constant('9999-99-99')),
    createdAt: fc.oneof(fc.integer(), fc.string(), fc.constant(-1), fc.constant(8.64e15 + 1)),
  }, { requiredKeys: [] }).map(v => base64url(JSON.stringify(v))),
  fc.tuple(fc.oneof(fc.integer(), fc.string(), fc.constant('2024-01-01T00:00:00.000Z')), fc.oneof(fc.uuid(), hostileString))
    .map(([a, b]) => base64url(`${String(a)}|${b}`)),
  fc.constantFrom('====', 'a', 'eyJ', 'eyJpZCI6Ij', base64url('{"id":"x"}') + '!!', 'A'.repeat(600))
)

/** Ids in a path: hostile strings, well-formed but unknown UUIDs, and (sometimes) real ids. */
export function idArb (realIds: string[] = []): fc.Arbitrary<string> {
  const arbs: Array<fc.WeightedArbitrary<string>> = [
    { arbitrary: hostileString, weight: 4 },
    { arbitrary: fc.uuid(), weight: 2 },
    { arbitrary: fc.uuid({ version: 7 }), weight: 1 },
    { arbitrary: fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/), weight: 1 },
    { arbitrary: fc.integer({ min: 2050, max: 5000 }).map(n => 'a'.repeat(n)), weight: 1 },
  ]
  if (realIds.length > 0) arbs.push({ arbitrary: fc.constantFrom(...realIds), weight: 3 })
  return fc.oneof(...arbs)
}

/** A path segment: mostly encoded, sometimes raw (traversal, slashes, bad percent-encoding). */
export const encodeSegment = (raw: boolean) => (s: string): string => {
  if (!raw) return encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, '\uFFFD'))
  return s.replace(/[\s#?]/g, c => encodeURIComponent(c)).replace(/[^\x21-\x7e]/g, c => encodeURIComponent(c.replace(/[\uD800-\uDFFF]/g, '\uFFFD')))
}

/** A syntactically valid value for a schema (best effort: formats and patterns may be approximated). */
export function validValue (s: JsonSchema, resolve: (s: JsonSchema | undefined) => JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  s = resolve(s)
  if (s.const !== undefined) return fc.constant(s.const)
  if (Array.isArray(s.enum) && s.enum.length > 0) return fc.constantFrom(...s.enum)
  const alts = s.anyOf ?? s.oneOf
  if (Array.isArray(alts) && alts.length > 0) return fc.oneof(...alts.map(a => validValue(a, resolve, depth + 1)))
  if (Array.isArray(s.allOf) && s.allOf.length > 0) return validValue(s.allOf[0] ?? {}, resolve, depth + 1)
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  const base = ((): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'string': {
        const min = s.minLength ?? 0
        const max = Math.max(min, Math.min(s.maxLength ?? 40, 40))
        if (s.format === 'email') return fc.emailAddress().filter(e => e.length <= (s.maxLength ?? 254) && e.length >= min)
        if (s.format === 'date-time') return fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map(d => d.toISOString())
        if (s.format === 'uuid') return fc.uuid()
        if (s.format === 'uri') return fc.webUrl()
        if (typeof s.pattern === 'string') {
          try { return fc.stringMatching(new RegExp(s.pattern)).filter(x => x.length >= min && x.length <= (s.maxLength ?? Infinity)) } catch { /* fall through */ }
        }
        return fc.string({ minLength: min, maxLength: max })
      }
      case 'integer': return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 100000 })
      case 'number': return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true })
      case 'boolean': return fc.boolean()
      case 'null': return fc.constant(null)
      case 'array': {
        const min = s.minItems ?? 0
        return fc.array(validValue(s.items ?? {}, resolve, depth + 1), { minLength: min, maxLength: Math.max(min, Math.min(s.maxItems ?? 4, 4)) })
      }
      case 'object': case undefined: {
        if (s.properties === undefined || depth > 4) return fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })
        const model: Record<string, fc.Arbitrary<unknown>> = {}
        for (const [k, v] of Object.entries(s.properties)) model[k] = validValue(v, resolve, depth + 1)
        return fc.record(model, { requiredKeys: (s.required ?? []).filter(k => k in model) })
      }
      default: return fc.jsonValue({ maxDepth: 1 })
    }
  })()
  return s.nullable === true ? fc.option(base, { nil: null, freq: 5 }) : base
}

/** A value that breaks the schema: wrong type, out of range, too long, hostile, or a broken object. */
export function invalidValue (s: JsonSchema, resolve: (s: JsonSchema | undefined) => JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  s = resolve(s)
  const wrongType: fc.Arbitrary<unknown> = fc.oneof(
    fc.integer(), fc.double(), fc.boolean(), fc.constant(null), hostileString, fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
    fc.dictionary(hostileString, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })
  )
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  const specific: fc.Arbitrary<unknown>[] = [hostileString]
  if (type === 'string') {
    specific.push(fc.integer({ min: (s.maxLength ?? 1000) + 1, max: (s.maxLength ?? 1000) + 3000 }).map(n => 'y'.repeat(n)))
    if ((s.minLength ?? 0) > 0) specific.push(fc.string({ maxLength: (s.minLength ?? 1) - 1 }))
  }
  if (type === 'integer' || type === 'number') {
    specific.push(fc.constantFrom(-1, 0, 1.5, 2 ** 53, -(2 ** 63), 1e308, '12', '1e3', Number.MAX_SAFE_INTEGER + 2))
    if (s.maximum !== undefined) specific.push(fc.integer({ min: s.maximum + 1, max: s.maximum + 1e6 }))
    if (s.minimum !== undefined) specific.push(fc.integer({ min: s.minimum - 1e6, max: s.minimum - 1 }))
  }
  if (type === 'array') {
    specific.push(fc.array(wrongType, { minLength: 1, maxLength: 4 }))
    specific.push(fc.integer({ min: (s.maxItems ?? 200) + 1, max: (s.maxItems ?? 200) + 50 }).chain(n => fc.array(validValue(s.items ?? {}, resolve, depth + 1), { minLength: n, maxLength: n })))
  }
  if ((type === 'object' || s.properties !== undefined) && depth < 3) specific.push(brokenObject(s, resolve, depth))
  return fc.oneof(wrongType, ...specific)
}

const EXTRA_KEYS = ['__proto__', 'constructor', 'isAdmin', 'role', 'id', 'ownerId', 'version', 'passwordHash', '', ' ', '$where', 'a.b', 'ünï']

/** A valid object, then: a required key dropped, an unknown key added, or one property made invalid. */
export function brokenObject (s: JsonSchema, resolve: (s: JsonSchema | undefined) => JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  const props = Object.keys(s.properties ?? {})
  return fc.tuple(validValue(s, resolve, depth), fc.nat({ max: 2 }), fc.option(fc.constantFrom(...(props.length > 0 ? props : ['x'])), { nil: undefined }),
    fc.oneof(fc.constantFrom(...EXTRA_KEYS), fc.string({ maxLength: 20 }))).chain(([base, how, prop, extra]) => {
    if (base === null || typeof base !== 'object' || Array.isArray(base)) return fc.constant(base)
    const obj = { ...(base as Record<string, unknown>) }
    if (how === 0) {
      const required = s.required ?? []
      const drop = required.length > 0 ? required[(prop?.length ?? 0) % required.length] : prop
      if (drop !== undefined) delete obj[drop]
      return fc.constant(obj)
    }
    if (how === 1) {
      return fc.jsonValue({ maxDepth: 1 }).map(v => {
        Object.defineProperty(obj, extra, { value: v, enumerable: true, configurable: true, writable: true })
        return obj
      })
    }
    const key = prop ?? props[0]
    if (key === undefined) return fc.constant(obj)
    return invalidValue(s.properties?.[key] ?? {}, resolve, depth + 1).map(v => ({ ...obj, [key]: v }))
  })
}

/** A deeply nested JSON text (parsers and validators must not blow the stack). */
export const deepJson = fc.integer({ min: 100, max: 20_000 }).chain(n => fc.constantFrom(
  '['.repeat(n) + ']'.repeat(n),
  '{"a":'.repeat(n) + '1' + '}'.repeat(n)
))

export const brokenJsonText = fc.oneof(
  fc.constantFrom('{', '{"a":}', '[1,]', 'NaN', 'undefined', '{"a":1}{"b":2}', "{'a':1}", '\u0000', '\uFEFF{}', '{"a":"\\ud800"}',
    '{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"isAdmin":true}}}', '{"a":1e999999}', '""', '"x"', '0', 'null', '[]', 'true'),
  fc.json({ maxDepth: 2 }).chain(j => fc.nat({ max: Math.max(0, j.length - 1) }).map(n => j.slice(0, n)))
)

export const weirdContentType = fc.constantFrom(
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=', 'application/xml',
  'application/json; charset=latin1', 'application/json; charset=utf-16', 'application/json;;;', 'application/json, text/plain',
  'APPLICATION/JSON', 'application/jsonx', 'application/octet-stream', '*/*', 'json', '', ';', 'application/vnd.api+json'
)

/** A request body for a JSON route: mostly broken, sometimes valid-shaped. */
export function jsonBodyArb (schema: JsonSchema | undefined, resolve: (s: JsonSchema | undefined) => JsonSchema, bodyLimit: number): fc.Arbitrary<{ contentType: string | undefined, payload: string }> {
  const asJson = (v: unknown): string => JSON.stringify(v) ?? 'null'
  const s = schema ?? {}
  return fc.oneof(
    { arbitrary: validValue(s, resolve).map(v => ({ contentType: 'application/json', payload: asJson(v) })), weight: 3 },
    { arbitrary: brokenObject(s, resolve).map(v => ({ contentType: 'application/json', payload: asJson(v) })), weight: 5 },
    { arbitrary: invalidValue(s, resolve).map(v => ({ contentType: 'application/json', payload: asJson(v) })), weight: 2 },
    { arbitrary: brokenJsonText.map(p => ({ contentType: 'application/json', payload: p })), weight: 2 },
    { arbitrary: deepJson.map(p => ({ contentType: 'application/json', payload: p })), weight: 1 },
    { arbitrary: fc.tuple(weirdContentType, validValue(s, resolve)).map(([ct, v]) => ({ contentType: ct === '' ? undefined : ct, payload: asJson(v) })), weight: 2 },
    { arbitrary: fc.integer({ min: 1, max: 64 }).map(extra => ({ contentType: 'application/json', payload: JSON.stringify({ pad: 'z'.repeat(bodyLimit + extra) }) })), weight: 1 }
  )
}
