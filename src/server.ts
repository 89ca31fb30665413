import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from './config.js'
import { buildApp } from './build.js'

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
