import type { Clock } from '../util/clock.ts'
import { createLogThrottle } from './log-throttle.ts'
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
  const throttle = createLogThrottle(options.intervalMs, deps.clock)
  return (err, fields = {}) => {
    const suppressed = throttle.admit()
    if (suppressed !== undefined) deps.logger.warn({ err, ...fields, suppressed }, options.message)
  }
}
