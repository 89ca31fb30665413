import { join } from 'node:path'
import type { FastifyInstance, FastifyPluginOptions } from 'fastify'
import autoload from '@fastify/autoload'
import type { Config } from './config.js'

export interface AppOptions extends FastifyPluginOptions {
  config?: Config
}

const root = join(import.meta.dirname, '..')

// Running from source (tsx, tap): let autoload import the .ts plugin and route files.
if (import.meta.url.endsWith('.ts')) process.env.FASTIFY_AUTOLOAD_TYPESCRIPT ??= '1'

/**
 * The plugin graph shared by the API and the worker: connections, external plugins, our decorators.
 * Within a folder autoload registers each plugin after the ones its fastify-plugin `dependencies`
 * name (so `config` comes before `db` and `redis`); each folder after the one before it.
 */
export async function plugins (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  await fastify.register(autoload, { dir: join(root, 'plugins/core'), options: opts })
  await fastify.register(autoload, { dir: join(root, 'plugins/external'), options: opts })
  await fastify.register(autoload, { dir: join(root, 'plugins/app'), options: opts })
}

/** The API: the plugin graph, then the routes (folder = URL prefix). */
export default async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  await plugins(fastify, opts)
  await fastify.register(autoload, {
    dir: join(root, 'routes'),
    options: opts,
    autoHooks: true,
    cascadeHooks: true,
    ignorePattern: /\.d\.ts$/,
  })
}
