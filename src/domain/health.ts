import type { FastifyInstance } from 'fastify'
import { withTimeout } from '../lib/timeout.js'

export type CheckStatus = 'ok' | 'fail'

/** Readiness: each dependency answered within a short timeout. */
export async function readiness (app: FastifyInstance): Promise<{ ok: boolean, checks: Record<'db' | 'redis' | 'storage', CheckStatus> }> {
  const run = async (fn: () => Promise<unknown>): Promise<CheckStatus> => {
    try {
      await withTimeout(fn(), 2000)
      return 'ok'
    } catch (err) {
      app.log.warn({ err }, 'readiness check failed')
      return 'fail'
    }
  }
  const [db, redis, storage] = await Promise.all([
    run(async () => await app.dbPool.query('SELECT 1')),
    run(async () => await app.redis.ping()),
    run(async () => await app.storage.check()),
  ])
  return { ok: db === 'ok' && redis === 'ok' && storage === 'ok', checks: { db, redis, storage } }
}
