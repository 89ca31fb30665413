import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import app, { plugins } from './app.js'
import type { Config } from './config.js'
import { serverOptions } from './options.js'

/** Builds the API exactly as the server runs it (tests use this with `inject`). */
export async function buildApp (config: Config, extra: Partial<FastifyServerOptions> = {}): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(config, extra)).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(fp(app), { config })
  return fastify
}

/** Builds the worker's instance: the same plugins, no routes. */
export async function buildWorkerApp (config: Config, extra: Partial<FastifyServerOptions> = {}): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(config, extra)).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(fp(plugins), { config })
  return fastify
}
