/** Small helpers for SQL written with drizzle or by hand. */

/** `s` with LIKE's wildcards and escape character escaped (MySQL's default escape is `\`). */
export const escapeLike = (s: string): string => s.replace(/[\\%_]/g, '\\$&')

/** A LIKE pattern matching `s` anywhere. */
export const likeContains = (s: string): string => `%${escapeLike(s)}%`

/** A LIKE pattern matching values that start with `s`. */
export const likePrefix = (s: string): string => `${escapeLike(s)}%`

/** True for a unique-index violation, as mysql2 throws it or as drizzle wraps it (`cause`). */
export function isDuplicate (err: unknown): boolean {
  const e = err as { code?: string, cause?: { code?: string } } | null | undefined
  return e?.code === 'ER_DUP_ENTRY' || e?.cause?.code === 'ER_DUP_ENTRY'
}
