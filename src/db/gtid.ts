/** GTID positions as MariaDB and MySQL print them, for the read replica's fence (src/db/replica.ts). */
export type Flavour = 'mariadb' | 'mysql'

const items = (s: string): string[] => s.split(',').map(x => x.trim()).filter(x => x !== '')

/** MariaDB `domain-server-seq,...`: the sequence number of each domain; null when unparsable. */
function mariadbSeqs (pos: string): Map<string, bigint> | null {
  const seqs = new Map<string, bigint>()
  for (const g of items(pos)) {
    const m = /^(\d+)-\d+-(\d+)$/.exec(g)
    if (m === null) return null
    seqs.set(m[1]!, BigInt(m[2]!))
  }
  return seqs
}

// A GTID tag (MySQL 8.3+: `uuid:1-5:tag:1-3`), case-insensitive.
const TAG = /^[a-z_][a-z0-9_]{0,31}$/i

/**
 * MySQL `uuid:1-5:7,uuid2:1-3`, tagged `uuid:1-5:tag:1-3`: the intervals of each source (uuid, or
 * uuid and tag); null when unparsable.
 */
function mysqlSets (pos: string): Map<string, Array<[bigint, bigint]>> | null {
  const out = new Map<string, Array<[bigint, bigint]>>()
  for (const g of items(pos)) {
    const [uuid, ...parts] = g.split(':')
    if (uuid === undefined || parts.length === 0) return null
    let source = uuid.toLowerCase()
    let intervals = 0
    for (const r of parts) {
      if (TAG.test(r)) {
        if (source !== uuid.toLowerCase() && intervals === 0) return null // a tag without intervals
        source = `${uuid.toLowerCase()}:${r.toLowerCase()}`
        intervals = 0
        continue
      }
      const m = /^(\d+)(?:-(\d+))?$/.exec(r)
      if (m === null) return null
      const list = out.get(source) ?? []
      list.push([BigInt(m[1]!), BigInt(m[2] ?? m[1]!)])
      out.set(source, list)
      intervals++
    }
    if (intervals === 0) return null
  }
  return out
}

/**
 * Whether GTID position `have` includes everything in `want`. MariaDB: `domain-server-seq` per
 * domain, sequence numbers growing within a domain; MySQL: GTID sets, `uuid:1-5:7,uuid2:1-3`.
 * Unparsable text covers only the same text.
 */
export function covers (flavour: Flavour, have: string, want: string): boolean {
  if (have === want) return true
  if (flavour === 'mariadb') {
    const seqs = mariadbSeqs(have)
    const wanted = mariadbSeqs(want)
    if (seqs === null || wanted === null) return false
    for (const [domain, seq] of wanted) {
      const own = seqs.get(domain)
      if (own === undefined || own < seq) return false
    }
    return true
  }
  const h = mysqlSets(have)
  const w = mysqlSets(want)
  if (h === null || w === null) return false
  for (const [uuid, ranges] of w) {
    const own = h.get(uuid) ?? []
    for (const [lo, hi] of ranges) if (!own.some(([a, b]) => a <= lo && hi <= b)) return false
  }
  return true
}

/**
 * A number that grows with the position of one primary, to keep the newer of two positions it
 * gave: MariaDB, the sum of the domains' sequence numbers; MySQL, the number of GTIDs in the set.
 * -1 when unparsable: such a position is not published (replica-fence.ts drops the published one).
 */
export function rank (flavour: Flavour, pos: string): number {
  if (flavour === 'mariadb') {
    const seqs = mariadbSeqs(pos)
    return seqs === null ? -1 : Number([...seqs.values()].reduce((a, b) => a + b, 0n))
  }
  const sets = mysqlSets(pos)
  if (sets === null) return -1
  let n = 0n
  for (const ranges of sets.values()) for (const [lo, hi] of ranges) n += hi - lo + 1n
  return Number(n)
}
