import type { Clock } from '../util/clock.ts'

/** At most one log line per interval, counting those held back in between. */
export interface LogThrottle {
  /**
   * Whether a line may go out now: the number held back since the last one that did, or
   * undefined when this one is held back too (and counted).
   */
  admit(): number | undefined
  /** The lines held back since the last one that went out, counted from zero again. */
  takeHeld(): number
}

export function createLogThrottle(intervalMs: number, clock: Clock): LogThrottle {
  let lastMs = Number.NEGATIVE_INFINITY
  let held = 0
  return {
    admit() {
      const nowMs = clock.now()
      if (nowMs - lastMs < intervalMs) {
        held++
        return undefined
      }
      lastMs = nowMs
      const before = held
      held = 0
      return before
    },
    takeHeld() {
      const before = held
      held = 0
      return before
    },
  }
}
