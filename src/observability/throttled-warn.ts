import type { Clock } from '../util/clock.ts'
import type { Logger } from './logger.ts'

/**
 * A warning logged at most once per `intervalMs`, counting the ones left out in between: an
 * outage of a shared store fails every request's announcement, and one line per request would
 * bury the logs (and cost the hot path) for as long as it lasts.
 */
export function createThrottledWarn(
  options: { readonly message: string; readonly intervalMs: number },
  deps: { readonly logger: Logger; readonly clock: Clock },
): (err: unknown, fields?: Record<string, unknown>) => void {
  let lastMs = Number.NEGATIVE_INFINITY
  let suppressed = 0
  return (err, fields = {}) => {
    const nowMs = deps.clock.now()
    if (nowMs - lastMs < options.intervalMs) {
      suppressed++
      return
    }
    deps.logger.warn({ err, ...fields, suppressed }, options.message)
    lastMs = nowMs
    suppressed = 0
  }
}
