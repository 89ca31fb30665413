import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from './config.js'
import { buildApp } from './build.js'
import { startupSummary, summaryText } from './lib/startup-summary.js'

const config = loadConfigOrExit()

const app = await buildApp(config)

// SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close pools; force-exit after the grace delay.
closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  app.log.fatal({ err }, 'could not start')
  process.exit(1)
}
// One line that says where everything is (no secrets): the first thing to read when something is not found.
const summary = startupSummary(config)
app.log.info(summary, `api ready: ${summaryText(summary)}`)
