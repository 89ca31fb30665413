import { join } from 'node:path'
import type { FastifyInstance, FastifyPluginOptions } from 'fastify'
import autoload from '@fastify/autoload'
import configPlugin from '../plugins/core/config.js'
import type { Config } from './config.js'

export interface AppOptions extends FastifyPluginOptions {
  config?: Config
}

const root = join(import.meta.dirname, '..')

// Running from source (tsx, tap): let autoload import the .ts plugin and route files.
if (import.meta.url.endsWith('.ts')) process.env.FASTIFY_AUTOLOAD_TYPESCRIPT ??= '1'

/** The plugin graph shared by the API and the worker: connections, external plugins, our decorators. */
export async function plugins (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  await fastify.register(configPlugin, opts)
  await fastify.register(autoload, { dir: join(root, 'plugins/core'), options: opts, ignorePattern: /^config\./ })
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
