import type { Clock } from '../util/clock.ts'

/**
 * The last `size` admissions from a queue, when and how costly: a drain rate measured on
 * departures alone. Where the decayed rate behind `predictedWaitMs` takes a half-life to follow a
 * change (and so, as a burst begins after a quiet spell, reads far too low), this follows within
 * `size` departures; it answers only once it has seen that many.
 */
export interface DepartureWindow {
  add(cost: number): void
  /**
   * Cost drained per second from the oldest departure in the window up to now, so a drain that
   * stalls reads ever lower. Undefined until `size` departures were seen, or when the latest is
   * more than `recentMs` old: then there is nothing recent to measure.
   */
  costPerSecond(recentMs: number): number | undefined
}

export function createDepartureWindow(
  options: { readonly size: number },
  deps: { readonly clock: Clock },
): DepartureWindow {
  const { size } = options
  const atMs = new Float64Array(size)
  const costs = new Float64Array(size)
  let seen = 0
  /** The slot the next departure goes in, which holds the oldest once the ring is full. */
  let next = 0

  return {
    add(cost) {
      atMs[next] = deps.clock.now()
      costs[next] = cost
      next = (next + 1) % size
      seen++
    },
    costPerSecond(recentMs) {
      if (seen < size) return undefined
      const nowMs = deps.clock.now()
      const newestAtMs = atMs[(next + size - 1) % size]!
      if (nowMs - newestAtMs > recentMs) return undefined
      const oldestAtMs = atMs[next]!
      // The oldest marks the window's start: what drained after it is the rest.
      let drained = 0
      for (let i = 0; i < size; i++) if (i !== next) drained += costs[i]!
      const spanMs = nowMs - oldestAtMs
      return spanMs > 0 ? (drained / spanMs) * 1000 : Number.POSITIVE_INFINITY
    },
  }
}
