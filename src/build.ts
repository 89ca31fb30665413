import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import app, { plugins } from './app.js'
import type { Config } from './config.js'
import { serverOptions } from './options.js'

/** Builds the API exactly as the server runs it (tests use this with `inject`). */
export async function buildApp (config: Config, extra: Partial<FastifyServerOptions> = {}): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(config, extra)).withTypeProvider<TypeBoxTypeProvider>()
  await registerOrClose(fastify, async () => await fastify.register(fp(app), { config }))
  return fastify
}

/** Builds the worker's instance: the same plugins, no routes. */
export async function buildWorkerApp (config: Config, extra: Partial<FastifyServerOptions> = {}): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(config, extra)).withTypeProvider<TypeBoxTypeProvider>()
  await registerOrClose(fastify, async () => await fastify.register(fp(plugins), { config }))
  return fastify
}

/**
 * Awaiting the registration loads the plugins; when one fails (or autoload outruns pluginTimeout)
 * the caller gets no instance to close, and the connections opened so far (Redis, MySQL pools) would
 * keep the process alive: close them here.
 */
async function registerOrClose (fastify: FastifyInstance, register: () => Promise<unknown>): Promise<void> {
  try {
    await register()
  } catch (err) {
    await fastify.close().catch(() => {})
    throw err
  }
}
