/** `p`, or a rejection with `Error(message)` once `ms` have passed (the timer is always cleared). */
export async function withTimeout<T> (p: Promise<T>, ms: number, message = 'timeout'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}
