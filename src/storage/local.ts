import { createReadStream, createWriteStream } from 'node:fs'
import { copyFile, mkdir, readdir, rename, rm, rmdir, stat, access, constants } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { randomUUID } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import { assertKey, StorageNotFound, type ByteRange, type ListedObject, type SignedUrlVerifier, type Storage } from './types.js'
import { UrlSigner, type SignedGrant } from './signed-url.js'

/** Local disk under one directory. Writes go to a temp file renamed into place on success. */
export class LocalStorage implements Storage {
  readonly driver = 'local' as const
  readonly root: string

  private readonly signer: UrlSigner | null
  private readonly baseUrl: string
  /** Set when signed URLs are configured: routes/storage serves them. */
  readonly signedUrls?: SignedUrlVerifier

  /** `urls`: where this API serves signed URLs (routes/storage) and the secret they are signed with. */
  constructor (dir: string, urls?: { baseUrl: string, secret: string }) {
    this.root = resolve(dir)
    this.signer = urls !== undefined ? new UrlSigner(urls.secret) : null
    this.baseUrl = (urls?.baseUrl ?? '').replace(/\/+$/, '')
    if (this.signer !== null) this.signedUrls = { verify: (token) => this.verifyToken(token) }
  }

  /** Verifies a token from a signed URL (routes/storage). */
  verifyToken (token: string): SignedGrant | 'expired' | null {
    return this.signer?.verify(token) ?? null
  }

  private signedUrl (grant: SignedGrant): string {
    if (this.signer === null) throw new Error('signed URLs need a baseUrl and a secret')
    assertKey(grant.key)
    return `${this.baseUrl}/storage/${this.signer.sign(grant)}`
  }

  /** The absolute path of a key; never outside the root. */
  path (key: string): string {
    assertKey(key)
    const p = resolve(this.root, key)
    if (!p.startsWith(this.root + sep)) throw new Error(`invalid storage key: ${key}`)
    return p
  }

  async put (key: string, body: Readable, _opts?: { contentType?: string }): Promise<{ size: number }> {
    const target = this.path(key)
    // The body may fail while we create directories: catch that here, not as an uncaught 'error'.
    let early: Error | null = null
    const onEarly = (err: Error) => { early ??= err }
    body.on('error', onEarly)
    const tmp = join(this.root, '.tmp', `${randomUUID()}.part`)
    let size = 0
    try {
      await mkdir(dirname(tmp), { recursive: true })
      if (early !== null) throw early
      body.on('data', (chunk: Buffer) => { size += chunk.length })
      // 1 MiB of buffer: fewer, larger (vectored) writes than the 16 KiB default
      await pipeline(body, createWriteStream(tmp, { flags: 'wx', highWaterMark: 1024 * 1024 }))
      await this.renameInto(tmp, target)
    } catch (err) {
      await rm(tmp, { force: true })
      throw early ?? err
    } finally {
      body.off('error', onEarly)
    }
    return { size }
  }

  async get (key: string, range?: ByteRange): Promise<Readable> {
    const p = this.path(key)
    try {
      await access(p, constants.R_OK)
    } catch {
      throw new StorageNotFound(key)
    }
    return createReadStream(p, range === undefined ? {} : { start: range.start, end: range.end })
  }

  async head (key: string): Promise<{ size: number } | null> {
    try {
      const s = await stat(this.path(key))
      return s.isFile() ? { size: s.size } : null
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  /** Also removes the directories the object leaves empty (`documents/<id>/`), up to the root. */
  async delete (key: string): Promise<void> {
    await rm(this.path(key), { force: true })
    await this.prune(key)
  }

  /**
   * Removes the empty directories above `key`, deepest first, never the root. rmdir refuses a
   * directory that is not empty, so an object written there meanwhile keeps it; a write that
   * made the directory but has not renamed its file into it yet finds it gone: `renameInto`
   * makes it again.
   */
  private async prune (key: string): Promise<void> {
    for (let dir = dirname(this.path(key)); dir.startsWith(this.root + sep); dir = dirname(dir)) {
      try {
        await rmdir(dir)
      } catch {
        return // not empty (or already gone, or not ours to remove): the directories above are not empty either
      }
    }
  }

  /** rename(from, target), making target's directory; again if a concurrent prune removed it in between. */
  private async renameInto (from: string, target: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await mkdir(dirname(target), { recursive: true })
      try {
        await rename(from, target)
        return
      } catch (err) {
        const sourceThere = await stat(from).then(() => true, () => false)
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !sourceThere || attempt >= 10) throw err
      }
    }
  }

  /** One rename: atomic, so `to` never holds a half-written or mixed object. */
  async move (from: string, to: string): Promise<void> {
    const source = this.path(from)
    const target = this.path(to)
    try {
      await this.renameInto(source, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && await this.head(from) === null) throw new StorageNotFound(from)
      throw err
    }
  }

  /** A copy in the temp directory, renamed into place: `to` is never seen half-written. */
  async copy (from: string, to: string): Promise<void> {
    const source = this.path(from)
    const target = this.path(to)
    const tmp = join(this.root, '.tmp', `${randomUUID()}.part`)
    await mkdir(dirname(tmp), { recursive: true })
    try {
      await copyFile(source, tmp, constants.COPYFILE_FICLONE)
      await this.renameInto(tmp, target)
    } catch (err) {
      await rm(tmp, { force: true })
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && await this.head(from) === null) throw new StorageNotFound(from)
      throw err
    }
  }

  /** Temp files of writes a crash interrupted (a failed write removes its own). */
  async sweepPartials (before: Date): Promise<number> {
    const tmp = join(this.root, '.tmp')
    let removed = 0
    for (const name of await readdir(tmp).catch(() => [] as string[])) {
      const s = await stat(join(tmp, name)).catch(() => null)
      if (s !== null && s.isFile() && s.mtime.getTime() < before.getTime()) {
        await rm(join(tmp, name), { force: true })
        removed++
      }
    }
    return removed
  }

  async * list (prefix: string): AsyncGenerator<ListedObject[]> {
    if (!prefix.endsWith('/')) throw new Error(`a list prefix ends with '/': ${prefix}`)
    const pending = [prefix.slice(0, -1)]
    for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
      const entries = await readdir(this.path(dir), { withFileTypes: true }).catch(() => [])
      const page: ListedObject[] = []
      for (const e of entries) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(e.name)) continue
        const key = `${dir}/${e.name}`
        if (e.isDirectory()) { pending.push(key); continue }
        if (!e.isFile()) continue
        const s = await stat(this.path(key)).catch(() => null)
        if (s !== null) page.push({ key, size: s.size, modified: s.mtime })
      }
      if (page.length > 0) yield page
    }
  }

  /** A signed, expiring URL on this API (GET /storage/:token). */
  async presignGet (key: string, opts: { expiresIn: number, filename?: string, contentType?: string }): Promise<string> {
    return this.signedUrl({ key, method: 'GET', exp: Math.floor(Date.now() / 1000) + opts.expiresIn, filename: opts.filename, contentType: opts.contentType })
  }

  /** Its signed URLs are served by this API: a redirect would only cost the client a round trip. */
  async downloadRedirect (): Promise<null> {
    return null
  }

  /** A signed, expiring URL on this API (PUT /storage/:token) accepting at most `contentLength` bytes. */
  async presignPut (key: string, opts: { expiresIn: number, contentType?: string, contentLength?: number }): Promise<{ url: string, headers: Record<string, string> }> {
    const url = this.signedUrl({ key, method: 'PUT', exp: Math.floor(Date.now() / 1000) + opts.expiresIn, contentType: opts.contentType, maxBytes: opts.contentLength })
    const headers: Record<string, string> = {}
    if (opts.contentType !== undefined) headers['content-type'] = opts.contentType
    return { url, headers }
  }

  async check (): Promise<void> {
    await mkdir(this.root, { recursive: true })
    await access(this.root, constants.W_OK | constants.R_OK)
  }
}
