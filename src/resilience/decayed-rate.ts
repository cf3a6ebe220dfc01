import type { Clock } from '../util/clock.ts'
import { createDecayedSum } from '../util/decayed-sum.ts'

/**
 * A rate of events (or of amounts, such as predicted cost) that forgets the past exponentially
 * with half-life `halfLifeMs`. It needs no timer and O(1) memory: each read decays the sum to now.
 */
export interface DecayedRate {
  add(amount: number): void
  /** Amount per second. 0 before anything was added. */
  perSecond(): number
}

export function createDecayedRate(
  options: { readonly halfLifeMs: number },
  deps: { readonly clock: Clock },
): DecayedRate {
  const { halfLifeMs } = options
  const sum = createDecayedSum(options, deps)
  let firstAtMs = Number.NaN

  return {
    add(amount) {
      if (Number.isNaN(firstAtMs)) firstAtMs = deps.clock.now()
      sum.add(amount)
    },
    perSecond() {
      if (Number.isNaN(firstAtMs)) return 0
      const total = sum.value()
      // A steady rate r fills the sum to r·h/ln 2. Early on the sum has not filled yet, so divide
      // by the fraction it could have reached (the EWMA bias correction); the age is floored so a
      // burst in the first instant does not read as an unbounded rate.
      const ageMs = Math.max(deps.clock.now() - firstAtMs, Math.min(1000, halfLifeMs))
      const filled = 1 - 2 ** (-ageMs / halfLifeMs)
      return ((total * Math.LN2) / halfLifeMs / filled) * 1000
    },
  }
}
