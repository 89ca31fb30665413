import fp from 'fastify-plugin'
import { and, eq } from 'drizzle-orm'
import { users } from '../../drizzle/schema/index.js'
import { createAdmin } from '../../src/domain/users.js'
import { AppError } from '../../src/lib/errors.js'
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from '../../src/domain/passwords.js'

/**
 * First start (docker compose): when ADMIN_EMAIL and ADMIN_PASSWORD are set and no admin exists
 * (a person: service accounts do not count),
 * creates one. Idempotent, and safe when several processes start together: the unique email
 * index lets exactly one insert win; the others see email_taken and do nothing.
 */
export default fp(async (fastify) => {
  const { ADMIN_EMAIL: email, ADMIN_PASSWORD: password } = fastify.config
  if (email === undefined || email === '' || password === undefined || password === '') return
  fastify.addHook('onReady', async () => {
    const [admin] = await fastify.db.select({ id: users.id }).from(users).where(and(eq(users.role, 'admin'), eq(users.kind, 'human'))).limit(1)
    if (admin !== undefined) return
    if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
      throw new Error(`ADMIN_PASSWORD: must be ${PASSWORD_MIN}..${PASSWORD_MAX} characters`)
    }
    const res = await createAdmin(fastify.db, email, await hashPassword(password, fastify.config.BCRYPT_COST))
      .catch((err: Error) => { throw err instanceof AppError ? new Error(`ADMIN_EMAIL: ${err.message}`) : err })
    if (res.created) fastify.log.info({ userId: res.id }, 'bootstrap admin created from ADMIN_EMAIL')
    else fastify.log.warn('ADMIN_EMAIL belongs to an existing user and no admin exists: promote it with the CLI or PATCH /users')
  })
}, { name: 'admin-bootstrap', dependencies: ['config', 'db'] })
