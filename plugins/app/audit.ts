import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { AUDIT_INSERT_SQL, auditValues, type AuditEntry } from '../../src/domain/audit.js'

export type { AuditEntry }

declare module 'fastify' {
  interface FastifyInstance {
    /** Records who did what, from where. Never pass secrets in `payload`. Failures are logged, not thrown. */
    audit: (request: FastifyRequest | null, entry: AuditEntry) => Promise<void>
  }
}

export default fp(async (fastify) => {
  fastify.decorate('audit', async (request: FastifyRequest | null, entry: AuditEntry) => {
    try {
      // Plain SQL: one audit row per mutating request, the query builder was a measurable share of them.
      await fastify.db.$client.execute(AUDIT_INSERT_SQL, auditValues(request, entry))
    } catch (err) {
      (request?.log ?? fastify.log).error({ err, action: entry.action }, 'audit write failed')
    }
  })
}, { name: 'audit', dependencies: ['db'] })
