import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { auditRecorder, contextOf, type AuditContext, type AuditEntry, type RecordAudit } from '../../src/domain/audit.js'

export type { AuditContext, AuditEntry }

/** The actor/audit context of a request: built here, once, and handed to the domain services. */
export const auditContext = (request: FastifyRequest): AuditContext => contextOf(request)

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The audit writer (src/domain/audit.ts auditRecorder) for the services' factories and jobs:
     * who did what, from where (`auditContext(request)`, or null for the system). Never pass secrets
     * in `payload`. Failures are logged, not thrown.
     */
    recordAudit: RecordAudit
  }
}

export default fp(async (fastify) => {
  const record = auditRecorder({ db: fastify.db, log: fastify.log })
  fastify.decorate('recordAudit', record)
}, { name: 'audit', dependencies: ['db'] })
