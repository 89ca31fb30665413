import { resolve } from 'node:path'
import type { Config } from '../config.js'
import { displayUrl as shown } from './http.js'

/** A URL as the start-up line shows it: the user name kept (which account), no password, no query. */
const displayUrl = (raw: string): string => shown(raw, { user: true })

export interface StartupSummary {
  publicUrl: string
  storage: string
  database: string
  redis: string
  ingestionUrl: string
}

/** Where this process thinks everything is: logged once at start-up by the API and the worker. */
export function startupSummary (config: Config): StartupSummary {
  const storage = config.STORAGE_DRIVER === 'local'
    ? `local ${resolve(config.STORAGE_DIR)}`
    : `s3 ${config.S3_BUCKET}@${config.S3_ENDPOINT !== '' ? displayUrl(config.S3_ENDPOINT) : `aws ${config.S3_REGION}`}`
  return {
    publicUrl: displayUrl(config.PUBLIC_URL),
    storage,
    database: displayUrl(config.DATABASE_URL),
    redis: displayUrl(config.REDIS_URL),
    ingestionUrl: displayUrl(config.INGESTION_URL),
  }
}

/** The summary as one readable sentence (the same fields go into the log line as properties). */
export function summaryText (s: StartupSummary): string {
  return `public URL ${s.publicUrl}, storage ${s.storage}, database ${s.database}, redis ${s.redis}, ingestion ${s.ingestionUrl}`
}
