import type { Clock } from './clock.ts'

/**
 * A sum whose every part counts half once `halfLifeMs` has passed since it was added: O(1) memory
 * and no timer, since each access decays the total to now. The building block of the decayed
 * rates, paces and growth counters that weigh recent evidence more.
 */
export interface DecayedSum {
  add(amount: number): void
  /** The total, decayed to now. */
  value(): number
}

export function createDecayedSum(
  options: { readonly halfLifeMs: number },
  deps: { readonly clock: Clock },
): DecayedSum {
  let total = 0
  let atMs = deps.clock.now()
  const decayToNow = (): void => {
    const nowMs = deps.clock.now()
    if (nowMs <= atMs) return
    total *= 0.5 ** ((nowMs - atMs) / options.halfLifeMs)
    atMs = nowMs
  }
  return {
    add(amount) {
      decayToNow()
      total += amount
    },
    value() {
      decayToNow()
      return total
    },
  }
}
