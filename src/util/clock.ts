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
  /**
   * Fires once after `delayMs`. The system clock waits at most MAX_TIMER_MS (a longer delay fires
   * early, at the cap); other clocks may wait the whole delay.
   */
  setTimer(delayMs: number, fn: () => void): Timer
}

/** The longest delay Node's timers take (2^31 − 1 ms, about 24.8 days); longer ones fire at 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1

export function createSystemClock(): Clock {
  const origin = performance.timeOrigin
  return {
    now: () => performance.now(),
    wallNow: () => origin + performance.now(),
    setTimer(delayMs, fn) {
      const handle = setTimeout(fn, Math.min(Math.max(0, delayMs), MAX_TIMER_MS))
      handle.unref()
      return { clear: () => clearTimeout(handle) }
    },
  }
}
