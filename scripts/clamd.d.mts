/** Types of scripts/clamd.mjs (a private clamd for tests and development). */
export declare const EICAR: string
export declare const EICAR_SIGNATURE: string
export declare function findClamd (): string | null
export declare function clamdCommand (port: number, command: string, timeoutMs?: number): Promise<string>
export interface RunningClamd {
  /** tcp://127.0.0.1:<port>, for CLAMD_URL */
  url: string
  port: number
  pid: number | undefined
  dir: string
  startedInMs: number
  stop: () => Promise<void>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}
export declare function startClamd (opts: { port: number, maxBytes?: number, dir?: string, timeoutMs?: number, log?: (text: string) => void }): Promise<RunningClamd>
