import { customType } from 'drizzle-orm/mysql-core'

/**
 * Text columns compared byte for byte. The database's default collation (utf8mb4_unicode_ci)
 * ignores letter case and accents, while JS and Redis compare exactly: a key that is one value
 * to MySQL and two to JS (an upper-case id, "é" and "e" as tags) let checks disagree with the
 * rows they guard (issue 18). drizzle-orm's varchar has no collation option, hence custom types;
 * the values are always written in one canonical form (ids lower case, emails and tags
 * normalised), so a binary comparison is the right one.
 */
const binaryText = (sqlType: string) => customType<{ data: string, driverData: string }>({ dataType: () => sqlType })

/**
 * A UUIDv7 id or a reference to one (always lower case: see `Id` in src/schemas/common.ts).
 * utf8mb4, not ascii: an ascii column compared with a non-ASCII parameter (`?ownerId=é`) is an
 * "Illegal mix of collations" error, not a miss. ASCII text takes one byte per character anyway.
 */
export const idColumn = binaryText('varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin')

/** Exactly compared text of `length` characters (emails, tags, idempotency keys). */
export const exactText = (name: string, length: number) => binaryText(`varchar(${length}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)(name)
