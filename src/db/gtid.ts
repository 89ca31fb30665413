/** GTID positions as MariaDB and MySQL print them, for the read replica's fence (src/db/replica.ts). */
export type Flavour = 'mariadb' | 'mysql'

/**
 * Whether GTID position `have` includes everything in `want`. MariaDB: `domain-server-seq` per
 * domain, sequence numbers growing within a domain; MySQL: GTID sets, `uuid:1-5:7,uuid2:1-3`.
 * Unparsable text covers only the same text.
 */
export function covers (flavour: Flavour, have: string, want: string): boolean {
  if (have === want) return true
  const items = (s: string): string[] => s.split(',').map(x => x.trim()).filter(x => x !== '')
  if (flavour === 'mariadb') {
    const seqs = new Map<string, bigint>()
    for (const g of items(have)) {
      const m = /^(\d+)-\d+-(\d+)$/.exec(g)
      if (m === null) return false
      seqs.set(m[1]!, BigInt(m[2]!))
    }
    return items(want).every((g) => {
      const m = /^(\d+)-\d+-(\d+)$/.exec(g)
      if (m === null) return false
      const seq = seqs.get(m[1]!)
      return seq !== undefined && seq >= BigInt(m[2]!)
    })
  }
  const sets = (s: string): Map<string, Array<[bigint, bigint]>> | null => {
    const out = new Map<string, Array<[bigint, bigint]>>()
    for (const g of items(s)) {
      const [uuid, ...ranges] = g.split(':')
      if (uuid === undefined || ranges.length === 0) return null
      const list = out.get(uuid.toLowerCase()) ?? []
      for (const r of ranges) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(r)
        if (m === null) return null
        list.push([BigInt(m[1]!), BigInt(m[2] ?? m[1]!)])
      }
      out.set(uuid.toLowerCase(), list)
    }
    return out
  }
  const h = sets(have)
  const w = sets(want)
  if (h === null || w === null) return false
  for (const [uuid, ranges] of w) {
    const own = h.get(uuid) ?? []
    for (const [lo, hi] of ranges) if (!own.some(([a, b]) => a <= lo && hi <= b)) return false
  }
  return true
}
