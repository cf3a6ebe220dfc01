import { type Clock, MAX_TIMER_MS, type Timer } from '../util/clock.ts'

export interface ScaledClockOptions {
  /** Engine milliseconds per real millisecond; 1 is real time. */
  readonly speedup: number
  /**
   * Fire timers closer to their deadline than `setTimeout`'s 1 ms grain allows, by finishing the
   * last stretch with `setImmediate`. Matters when a step lasts under a real millisecond (large
   * speedups); it keeps the event loop busy while a timer is that close.
   */
  readonly isPrecise?: boolean
}

/** Real time is read and waited on only through this, so tests can inject another clock. */
export interface RealTimers {
  now(): number
  wallNow(): number
  setTimeout(fn: () => void, ms: number): { clear(): void }
  setImmediate(fn: () => void): { clear(): void }
}

const nodeTimers: RealTimers = {
  now: () => performance.now(),
  wallNow: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms)
    handle.unref()
    return { clear: () => clearTimeout(handle) }
  },
  setImmediate(fn) {
    // Kept referenced: an unref'd immediate does not stop the loop from blocking in poll, so it
    // would wait for the next I/O event. It lives at most the last 2 ms before a deadline.
    const handle = setImmediate(fn)
    return { clear: () => clearImmediate(handle) }
  },
}

/**
 * A clock that runs `speedup` times faster than real time, starting at 0 when created. `now()` is
 * engine (trace) time; `wallNow()` is the real wall time at creation plus elapsed engine time.
 */
export function createScaledClock(
  options: ScaledClockOptions,
  real: RealTimers = nodeTimers,
): Clock {
  const { speedup } = options
  if (!(speedup > 0) || !Number.isFinite(speedup)) {
    throw new Error(`speedup must be a positive number, got ${speedup}`)
  }
  const isPrecise = options.isPrecise ?? speedup > 1
  const realStartMs = real.now()
  const wallStartMs = real.wallNow()
  const now = (): number => (real.now() - realStartMs) * speedup

  const setTimer = (delayMs: number, fn: () => void): Timer => {
    const dueRealMs = real.now() + Math.max(0, delayMs) / speedup
    let current: { clear(): void } | undefined
    // Never fires synchronously: a due timer still waits for the next turn of the event loop.
    const arm = (): void => {
      const leftMs = dueRealMs - real.now()
      if (isPrecise ? leftMs < 2 : leftMs <= 0) current = real.setImmediate(check)
      // Node fires a timeout past MAX_TIMER_MS after 1 ms: waited in stretches, `check` re-arms.
      else current = real.setTimeout(check, Math.min(MAX_TIMER_MS, isPrecise ? leftMs - 1 : leftMs))
    }
    const check = (): void => {
      if (dueRealMs - real.now() > 0) {
        arm()
        return
      }
      current = undefined
      fn()
    }
    arm()
    return { clear: () => current?.clear() }
  }

  return { now, wallNow: () => wallStartMs + now(), setTimer }
}
