import { withTimeout } from '../lib/timeout.js'
import type { ReplicaState } from '../db/read-router.js'

export type CheckStatus = 'ok' | 'fail'

/** What readiness checks: one cheap call per dependency, and where to say what failed. */
export interface ReadinessDeps {
  db: () => Promise<unknown>
  redis: () => Promise<unknown>
  storage: () => Promise<unknown>
  /** Conditions that do not make the process unready but that an operator must fix (e.g. Redis may evict keys). */
  warnings?: () => Promise<Array<string | null>>
  /** The read replica, when there is one: its state, which never makes the process unready (lists then read the primary). */
  replica?: () => Promise<ReplicaState | null>
  log: { warn: (obj: object, msg: string) => void }
}

/** Readiness: each dependency answered within a short timeout. */
export async function readiness (deps: ReadinessDeps): Promise<{ ok: boolean, checks: Record<'db' | 'redis' | 'storage', CheckStatus> & { replica?: ReplicaState }, warnings: string[] }> {
  const run = async (fn: () => Promise<unknown>): Promise<CheckStatus> => {
    try {
      await withTimeout(fn(), 2000)
      return 'ok'
    } catch (err) {
      deps.log.warn({ err }, 'readiness check failed')
      return 'fail'
    }
  }
  const [db, redis, storage, warnings, replica] = await Promise.all([
    run(deps.db),
    run(deps.redis),
    run(deps.storage),
    withTimeout(deps.warnings?.() ?? Promise.resolve([]), 2000).catch((): Array<string | null> => []),
    withTimeout(deps.replica?.() ?? Promise.resolve(null), 4000).catch((): ReplicaState => 'down'),
  ])
  const found = warnings.filter((w): w is string => w !== null)
  if (replica !== null && replica !== 'ok') found.push(`read replica ${replica}: list reads go to the primary`)
  return { ok: db === 'ok' && redis === 'ok' && storage === 'ok', checks: { db, redis, storage, ...(replica !== null ? { replica } : {}) }, warnings: found }
}

export type Readiness = Awaited<ReturnType<typeof readiness>>

/**
 * Readiness for a public, unlimited route: a probe that arrives while a check runs shares it, and
 * one within `reuseMs` after it ended gets its result, so a flood of probes costs the dependencies
 * one check per `reuseMs` (with 0, one per check's duration).
 */
export function sharedReadiness (deps: ReadinessDeps, reuseMs: number, now: () => number = Date.now): () => Promise<Readiness> {
  let running: Promise<Readiness> | null = null
  let last: { at: number, result: Readiness } | null = null
  return async () => {
    if (running !== null) return await running
    if (last !== null && now() - last.at < reuseMs) return last.result
    running = readiness(deps)
    try {
      const result = await running
      last = { at: now(), result }
      return result
    } finally {
      running = null
    }
  }
}
