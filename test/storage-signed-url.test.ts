import { test } from 'tap'
import { build, assertErrorShape, createUser } from './helper.js'
import { UrlSigner } from '../src/storage/signed-url.js'
import { insertUpload } from '../src/domain/uploads.js'
import { stagingKey } from '../src/domain/upload-staging.js'
import { newId } from '../src/lib/ids.js'

const path = (url: string) => { const u = new URL(url); return u.pathname + u.search }

test('local signed URLs: PUT raw bytes, then GET them (with Range), expiry and tampering refused', async (t) => {
  const app = await build(t, { PUBLIC_URL: 'http://quire.test:8080/' })
  // Signed PUTs write only the staging key of a pending upload (src/domain/upload-staging.ts).
  const id = newId()
  const key = stagingKey(id)
  const owner = await createUser(app, 'editor')
  await insertUpload(app.db, { id, userId: owner.id, filename: 'obj-1', mimeType: 'text/plain', size: 11, sha256: null, storageKey: key, expiresAt: new Date(Date.now() + 60_000) })
  const put = await app.storage.presignPut(key, { expiresIn: 60, contentType: 'text/plain', contentLength: 11 })
  t.match(put.url, /^http:\/\/quire\.test:8080\/storage\/[\w-]+\.[\w-]+$/)
  t.equal(put.headers['content-type'], 'text/plain')

  let res = await app.inject({ method: 'PUT', url: path(put.url), headers: { 'content-type': 'text/plain' }, payload: 'hello world' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { size: 11 })
  t.same(await app.storage.head(key), { size: 11 })

  res = await app.inject({ method: 'PUT', url: path(put.url), headers: { 'content-type': 'text/plain' }, payload: 'hello world, too long' })
  assertErrorShape(t, res, 413, 'payload_too_large')
  t.same(await app.storage.head(key), { size: 11 }, 'a refused PUT leaves the previous object intact')

  const get = await app.storage.presignGet(key, { expiresIn: 60, filename: 'héllo "world".txt', contentType: 'text/plain' })
  res = await app.inject({ method: 'GET', url: path(get) })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'hello world')
  t.equal(res.headers['content-length'], '11')
  t.equal(res.headers['content-type'], 'text/plain')
  t.match(String(res.headers['content-disposition']), /^attachment; filename="hello _world_.txt"; filename\*=UTF-8''h%C3%A9llo%20%22world%22\.txt$/)

  res = await app.inject({ method: 'GET', url: path(get), headers: { range: 'bytes=6-' } })
  t.equal(res.statusCode, 206)
  t.equal(res.body, 'world')
  t.equal(res.headers['content-range'], 'bytes 6-10/11')
  res = await app.inject({ method: 'GET', url: path(get), headers: { range: 'bytes=50-60' } })
  assertErrorShape(t, res, 416, 'range_not_satisfiable')

  res = await app.inject({ method: 'PUT', url: path(get), payload: 'x' })
  assertErrorShape(t, res, 403, 'invalid_signature')
  const tampered = path(get).replace(/\.([\w-])/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`)
  res = await app.inject({ method: 'GET', url: tampered })
  assertErrorShape(t, res, 403, 'invalid_signature')
  res = await app.inject({ method: 'GET', url: '/storage/garbage' })
  assertErrorShape(t, res, 403, 'invalid_signature')

  const signer = new UrlSigner(app.config.STORAGE_URL_SECRET)
  const expired = signer.sign({ key, method: 'GET', exp: Math.floor(Date.now() / 1000) - 5 })
  res = await app.inject({ method: 'GET', url: `/storage/${expired}` })
  assertErrorShape(t, res, 410, 'url_expired')

  const other = new UrlSigner('another-secret-another-secret-0123456')
  res = await app.inject({ method: 'GET', url: `/storage/${other.sign({ key, method: 'GET', exp: Math.floor(Date.now() / 1000) + 60 })}` })
  assertErrorShape(t, res, 403, 'invalid_signature')

  const missing = await app.storage.presignGet('uploads/t/missing', { expiresIn: 60 })
  res = await app.inject({ method: 'GET', url: path(missing) })
  assertErrorShape(t, res, 404, 'not_found')
})
