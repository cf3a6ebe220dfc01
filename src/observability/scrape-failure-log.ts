import type { Clock } from '../util/clock.ts'
import { createLogThrottle, type LogThrottle } from './log-throttle.ts'
import type { Logger } from './logger.ts'

export interface ScrapeFailureLogOptions {
  /** At most one warning per endpoint in this long. */
  readonly intervalMs: number
}

export interface ScrapeFailureLog {
  failed(upstream: string, endpointId: string, reason: string): void
  read(upstream: string, endpointId: string): void
  /** Forgets the endpoints no longer scraped. */
  retainOnly(scraped: Iterable<{ readonly upstream: string; readonly endpointId: string }>): void
}

interface EndpointLog {
  readonly throttle: LogThrottle
  /** A warning went out and no reading came since. */
  warned: boolean
}

/**
 * Says why an engine's `/metrics` gives no reading, which the failure counter cannot: a 404 (an
 * SGLang server started without `--enable-metrics`), a timeout, a page that is not an engine's.
 * One warning per endpoint and interval at most, with the failures left out since the last, and
 * one line when readings come back after a warning: an engine down for an hour, or flapping every
 * scrape, writes a line a minute, not one a scrape.
 */
export function createScrapeFailureLog(
  options: ScrapeFailureLogOptions,
  deps: { readonly logger: Logger; readonly clock: Clock },
): ScrapeFailureLog {
  const endpoints = new Map<string, EndpointLog>()
  const keyOf = (upstream: string, endpointId: string) => JSON.stringify([upstream, endpointId])
  return {
    failed(upstream, endpointId, reason) {
      const key = keyOf(upstream, endpointId)
      let log = endpoints.get(key)
      if (log === undefined) {
        log = { throttle: createLogThrottle(options.intervalMs, deps.clock), warned: false }
        endpoints.set(key, log)
      }
      const suppressed = log.throttle.admit()
      if (suppressed === undefined) return
      deps.logger.warn(
        { upstream, endpoint: endpointId, reason, suppressed },
        'engine metrics scrape failed: its readings count as unknown once stale',
      )
      log.warned = true
    },
    read(upstream, endpointId) {
      const log = endpoints.get(keyOf(upstream, endpointId))
      if (!log?.warned) return
      log.warned = false
      deps.logger.info(
        { upstream, endpoint: endpointId, suppressed: log.throttle.takeHeld() },
        'engine metrics read again',
      )
    },
    retainOnly(scraped) {
      const keep = new Set<string>()
      for (const { upstream, endpointId } of scraped) keep.add(keyOf(upstream, endpointId))
      for (const key of endpoints.keys()) if (!keep.has(key)) endpoints.delete(key)
    },
  }
}
