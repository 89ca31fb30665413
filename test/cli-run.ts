import { spawn } from 'node:child_process'
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './helper.js'

export interface Run { code: number | null, stdout: string, stderr: string }

/** Runs `npm run cli -- ...` the way an operator does (the CLI module itself, through tsx). */
export async function cli (args: string[], opts: { stdin?: string, env?: Record<string, string> } = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: TEST_REDIS_URL, BCRYPT_COST: '4', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(opts.stdin ?? '')
  })
}
