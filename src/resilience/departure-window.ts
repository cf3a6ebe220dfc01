import type { Clock } from '../util/clock.ts'

/**
 * The last `size` admissions from a queue, when and how costly: a drain rate measured on
 * departures alone. Where a decayed rate takes a half-life to follow a change (and so, as a burst
 * begins after a quiet spell, reads far too low), this follows within `size` departures; it
 * answers only once it has seen that many. The span is measured in busy time (`deps.busyMs`): a
 * queue that forms only in short bursts drains nothing in the idle spells between them, and
 * counting those would read its drain as many times slower.
 */
export interface DepartureWindow {
  add(cost: number): void
  /**
   * Cost drained per second (of busy time) from the oldest departure in the window up to now, so
   * a drain that stalls while something waits reads ever lower. Undefined until `size` departures
   * were seen, or when the latest is more than `recentMs` old: then there is nothing recent to
   * measure.
   */
  costPerSecond(recentMs: number): number | undefined
}

export function createDepartureWindow(
  options: { readonly size: number },
  deps: {
    readonly clock: Clock
    /** Time during which something waited to depart, summed, in ms. */
    readonly busyMs: () => number
  },
): DepartureWindow {
  const { size } = options
  const busyAtMs = new Float64Array(size)
  const costs = new Float64Array(size)
  let seen = 0
  /** The slot the next departure goes in, which holds the oldest once the ring is full. */
  let next = 0
  let lastAtMs = 0

  return {
    add(cost) {
      lastAtMs = deps.clock.now()
      busyAtMs[next] = deps.busyMs()
      costs[next] = cost
      next = (next + 1) % size
      seen++
    },
    costPerSecond(recentMs) {
      if (seen < size || deps.clock.now() - lastAtMs > recentMs) return undefined
      // The oldest marks the window's start: what drained after it is the rest.
      let drained = 0
      for (let i = 0; i < size; i++) if (i !== next) drained += costs[i]!
      const spanMs = deps.busyMs() - busyAtMs[next]!
      return spanMs > 0 ? (drained / spanMs) * 1000 : Number.POSITIVE_INFINITY
    },
  }
}
