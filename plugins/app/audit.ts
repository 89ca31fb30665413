import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { auditRecorder, contextOf, type AuditContext, type AuditEntry, type RecordAudit } from '../../src/domain/audit.js'

export type { AuditContext, AuditEntry }

/** The actor/audit context of a request: built here, once, and handed to the domain services. */
export const auditContext = (request: FastifyRequest): AuditContext => contextOf(request)

declare module 'fastify' {
  interface FastifyInstance {
    /** Records who did what, from where. Never pass secrets in `payload`. Failures are logged, not thrown. */
    audit: (request: FastifyRequest | null, entry: AuditEntry) => Promise<void>
    /** The domain's audit writer (src/domain/audit.ts auditRecorder), for the services' factories. */
    recordAudit: RecordAudit
  }
}

export default fp(async (fastify) => {
  const record = auditRecorder({ db: fastify.db, log: fastify.log })
  fastify.decorate('recordAudit', record)
  fastify.decorate('audit', async (request: FastifyRequest | null, entry: AuditEntry) => await record(request === null ? null : auditContext(request), entry))
}, { name: 'audit', dependencies: ['db'] })
