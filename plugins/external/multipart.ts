import fp from 'fastify-plugin'
import multipart from '@fastify/multipart'

export default fp(async (fastify) => {
  await fastify.register(multipart, {
    throwFileSizeLimit: true,
    limits: {
      fileSize: fastify.config.UPLOAD_MAX_BYTES,
      files: 1,
      fields: 32,
      fieldSize: 64 * 1024,
      parts: 40,
      headerPairs: 100,
    },
  })
}, { name: 'multipart', dependencies: ['config'] })
