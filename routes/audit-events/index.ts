import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { listAuditEvents } from '../../src/domain/audit.js'
import { Id, Page, PageQuery, authErrors } from '../../src/schemas/common.js'
import { AuditEvent } from '../../src/schemas/auth.js'

/** The audit log (`audit:read`): who did what, when, from where. */
const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    config: { permission: 'audit:read', replicaRead: true },
    schema: {
      tags: ['admin'],
      summary: 'Audit events, newest first',
      querystring: Type.Object({
        ...PageQuery,
        actorId: Type.Optional(Id()),
        apiKeyId: Type.Optional(Id({ description: 'events made with this API key' })),
        action: Type.Optional(Type.String({ maxLength: 64, description: 'exact action, or a prefix ending in ".*" such as "auth.*"' })),
        subject: Type.Optional(Type.String({ maxLength: 128, description: 'exact: "user:<id>", "session:<id>", "document:<id>", "ingestion:<id>", "job:<queue>/<id>"' })),
      }, { additionalProperties: false }),
      response: { 200: Page(AuditEvent), ...authErrors },
    },
  }, async (request) => await fastify.reads.read(async db => await listAuditEvents(db, { ...request.query, limit: request.query.limit ?? 20 }), request.readHint))
}

export default auditRoutes
