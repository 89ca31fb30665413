/**
 * Child process of job-catalogue.test.ts: builds the API app (the server's plugin and route graph),
 * then reports whether sharp was loaded; then imports the worker's processors and reports again
 * (the control: proves the check sees sharp when it is loaded).
 */
import { buildApp } from '../../src/build.js'
import { testConfig, TEST_PLUGIN_TIMEOUT } from '../helper.js'

// sharp is an ES module here (no require.cache entry); its native libvips binding is loaded on import.
const sharpLoaded = (): boolean => (process.report.getReport() as { sharedObjects: string[] }).sharedObjects.some(o => /sharp|vips/i.test(o))

const app = await buildApp(testConfig(), { pluginTimeout: TEST_PLUGIN_TIMEOUT })
await app.ready()
const api = sharpLoaded()
await app.close()
await import('../../src/jobs/processors.js')
process.stdout.write(JSON.stringify({ api, worker: sharpLoaded() }) + '\n')
