import fp from 'fastify-plugin'
import { createStorage, type Storage } from '../../src/storage/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    storage: Storage
  }
}

export default fp(async (fastify) => {
  const storage = await createStorage(fastify.config)
  fastify.decorate('storage', storage)
  fastify.addHook('onClose', async () => { await storage.close?.() })
}, { name: 'storage', dependencies: ['config'] })
