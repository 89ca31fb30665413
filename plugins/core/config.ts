import fp from 'fastify-plugin'
import { loadConfig, type Config } from '../../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface ConfigPluginOptions {
  /** A ready config (tests, worker); otherwise it is read from process.env. */
  config?: Config
}

export default fp<ConfigPluginOptions>(async (fastify, opts) => {
  fastify.decorate('config', opts.config ?? loadConfig())
}, { name: 'config' })
