import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { authErrors, errors, Id, IdParam, NoContent, Page, PageQuery } from '../../src/schemas/common.js'
import { Share, ShareAccess } from '../../src/schemas/documents.js'
import { requireDocument } from '../../src/domain/document-access.js'
import { deleteShare, listShares, putShare, userExists } from '../../src/domain/documents.js'
import { badRequest, notFound } from '../../src/lib/errors.js'

const ShareParams = Type.Object({ id: Id(), userId: Id() }, { additionalProperties: false })

/** Per-document shares: one user gets `read` or `write`. Managed by the owner (or documents:manage). */
const shareRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify

  fastify.get('/:id/shares', {
    config: { permission: 'documents:read' },
    schema: {
      tags: ['documents'],
      summary: 'Who the document is shared with, by user id (cursor-paginated; owner or documents:manage)',
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
    const { doc } = await requireDocument(db, request.user, request.params.id, 'share')
    const { userId } = request.params
    if (!await userExists(db, userId)) throw notFound('User')
    if (userId === doc.ownerId) throw badRequest('The owner already has full access; share with another user', 'validation_failed')
    const { previous, createdAt } = await putShare(db, doc.id, userId, request.body.access)
    if (previous !== request.body.access) {
      await fastify.audit(request, { action: 'document.share', subject: `document:${doc.id}`, payload: { userId, access: request.body.access, previous } })
    }
    return { userId, access: request.body.access, createdAt: createdAt.toISOString() }
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
    const { doc } = await requireDocument(db, request.user, request.params.id, 'share')
    if (!await deleteShare(db, doc.id, request.params.userId)) throw notFound('Share')
    await fastify.audit(request, { action: 'document.unshare', subject: `document:${doc.id}`, payload: { userId: request.params.userId } })
    return await reply.code(204).send(null)
  })
}

export default shareRoutes
