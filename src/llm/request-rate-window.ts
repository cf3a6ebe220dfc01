import type { Clock } from '../util/clock.ts'

/**
 * Router-side requests per second per endpoint over a sliding window, as vLLM production-stack's
 * request stats keep it (`--request-stats-window`, 60 s). Counts go into `buckets` time buckets,
 * so memory is fixed per endpoint however high the rate; the window slides a bucket at a time.
 */
export interface RequestRateWindow {
  record(endpointId: string): void
  /** Requests per second over the last window. 0 for an endpoint never recorded. */
  rate(endpointId: string): number
}

export interface RequestRateWindowOptions {
  readonly windowMs: number
  /** Default 60: one-second buckets over the default 60 s window. */
  readonly buckets?: number
}

interface Series {
  readonly counts: Float64Array
  /** The bucket number (time / bucket width) each slot last counted for. */
  readonly epochs: Float64Array
}

export function createRequestRateWindow(
  options: RequestRateWindowOptions,
  deps: { readonly clock: Clock },
): RequestRateWindow {
  const buckets = options.buckets ?? 60
  const bucketMs = options.windowMs / buckets
  const windowSeconds = options.windowMs / 1000
  const byEndpoint = new Map<string, Series>()
  const epochNow = (): number => Math.floor(deps.clock.now() / bucketMs)

  return {
    record(endpointId) {
      let series = byEndpoint.get(endpointId)
      if (series === undefined) {
        series = {
          counts: new Float64Array(buckets),
          epochs: new Float64Array(buckets).fill(Number.NEGATIVE_INFINITY),
        }
        byEndpoint.set(endpointId, series)
      }
      const epoch = epochNow()
      const slot = ((epoch % buckets) + buckets) % buckets
      if (series.epochs[slot] !== epoch) {
        series.epochs[slot] = epoch
        series.counts[slot] = 0
      }
      series.counts[slot]!++
    },
    rate(endpointId) {
      const series = byEndpoint.get(endpointId)
      if (series === undefined) return 0
      const oldest = epochNow() - buckets + 1
      let total = 0
      for (let slot = 0; slot < buckets; slot++) {
        if (series.epochs[slot]! >= oldest) total += series.counts[slot]!
      }
      return total / windowSeconds
    },
  }
}
