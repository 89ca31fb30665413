import type { BackoffStrategy } from 'bullmq'
import type { Config } from '../config.js'

/**
 * The worker's custom backoff types (BullMQ calls this for a `backoff.type` it does not know).
 * `scan-retry`: SCAN_RETRY_MS doubling per attempt up to SCAN_RETRY_MAX_MS, with 25% jitter, so
 * a scan waiting for clamd is retried every few minutes for as long as it takes.
 */
export function backoffStrategy (config: Pick<Config, 'SCAN_RETRY_MS' | 'SCAN_RETRY_MAX_MS'>): BackoffStrategy {
  return (attemptsMade, type) => {
    if (type !== 'scan-retry') throw new Error(`unknown backoff type ${String(type)}`)
    const exp = Math.min(Math.max(attemptsMade - 1, 0), 40)
    const delay = Math.min(config.SCAN_RETRY_MS * 2 ** exp, config.SCAN_RETRY_MAX_MS)
    return Math.round(delay * (0.75 + Math.random() * 0.25))
  }
}
