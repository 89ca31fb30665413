import { v7 as uuidv7, validate, version } from 'uuid'

/** New opaque, sortable id (UUIDv7). */
export const newId = (): string => uuidv7()

/** True for a well-formed UUIDv7 string; anything else can be answered 404 without a query. */
export const isId = (s: string): boolean => s.length === 36 && validate(s) && version(s) === 7
