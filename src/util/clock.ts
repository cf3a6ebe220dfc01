/** A cancellable timer handle. */
export interface Timer {
  clear(): void
}

/**
 * Time as the deciding code sees it. `now()` is monotonic milliseconds; it is not wall time.
 * Policies, health and resilience code take a Clock so they run unchanged in virtual time.
 */
export interface Clock {
  now(): number
  /** Wall-clock epoch milliseconds, for logs and cookies. */
  wallNow(): number
  setTimer(delayMs: number, fn: () => void): Timer
}

export function createSystemClock(): Clock {
  const origin = performance.timeOrigin
  return {
    now: () => performance.now(),
    wallNow: () => origin + performance.now(),
    setTimer(delayMs, fn) {
      const handle = setTimeout(fn, Math.max(0, delayMs))
      handle.unref()
      return { clear: () => clearTimeout(handle) }
    },
  }
}
