import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { authErrors, errors, Id, IdParam, NoContent, Page, PageQuery } from '../../src/schemas/common.js'
import { Share, ShareAccess } from '../../src/schemas/documents.js'
import { requireDocument } from '../../src/domain/document-access.js'
import { listShares } from '../../src/domain/documents.js'
import { auditContext } from '../../plugins/app/audit.js'

const ShareParams = Type.Object({ id: Id(), userId: Id() }, { additionalProperties: false })

/** Per-document shares: one user gets `read` or `write`. Managed by the owner (or documents:manage). */
const shareRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, documentService: documents } = fastify

  // The document rule's `share` (src/domain/access/document-rule.ts) on a document the caller can
  // see: the gate asks for both permissions that takes; whose document it is is the rule's part.
  fastify.get('/:id/shares', {
    config: { permission: { all: ['documents:read', ['documents:share', 'documents:manage']] } },
    schema: {
      tags: ['documents'],
      summary: 'Who the document is shared with, by user id (cursor-paginated; its owner, or documents:manage)',
      params: IdParam,
      querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
      response: { 200: Page(Share), ...authErrors, ...errors(404) },
    },
  }, async (request) => {
    const { doc } = await requireDocument(db, request.user, request.params.id, 'share')
    return await listShares(db, doc.id, { limit: request.query.limit ?? 20, cursor: request.query.cursor })
  })

  fastify.put('/:id/shares/:userId', {
    config: { permission: 'documents:share' },
    schema: {
      tags: ['documents'],
      summary: 'Share the document with a user, or change their access',
      params: ShareParams,
      body: Type.Object({ access: ShareAccess }, { additionalProperties: false }),
      response: { 200: Share, ...authErrors, ...errors(404) },
    },
  }, async (request) => {
    return await documents.share(request.user, auditContext(request), request.params.id, request.params.userId, request.body.access)
  })

  fastify.delete('/:id/shares/:userId', {
    config: { permission: 'documents:share' },
    schema: {
      tags: ['documents'],
      summary: 'Stop sharing the document with a user',
      params: ShareParams,
      response: { 204: NoContent, ...authErrors, ...errors(404) },
    },
  }, async (request, reply) => {
    await documents.unshare(request.user, auditContext(request), request.params.id, request.params.userId)
    return await reply.code(204).send(null)
  })
}

export default shareRoutes
