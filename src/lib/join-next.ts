/**
 * Shares one call of `fetch` among concurrent callers, each of which joins a call that starts
 * after it arrived, never an older one still in flight (whose answer may predate what the caller
 * already saw): at most one call in flight and one waiting to start.
 */
export function joinNext<T> (fetch: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null
  let next: Promise<T> | null = null
  const start = (): Promise<T> => {
    const p = fetch().finally(() => {
      inFlight = null
      next = null
    })
    inFlight = p
    return p
  }
  return async () => {
    if (inFlight === null) return await start()
    if (next === null) {
      const after = inFlight
      next = after.then(start, start)
    }
    return await next
  }
}
