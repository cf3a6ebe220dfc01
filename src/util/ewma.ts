/**
 * Exponentially weighted moving average over irregular samples, decayed by elapsed time so a
 * burst of samples does not count more than the same signal spread out.
 */
export interface Ewma {
  readonly value: number
  readonly hasValue: boolean
  observe(sample: number, nowMs: number): void
}

export function createEwma(halfLifeMs: number, initial?: number): Ewma {
  let value = initial ?? 0
  let hasValue = initial !== undefined
  let lastMs = 0
  return {
    get value() {
      return value
    },
    get hasValue() {
      return hasValue
    },
    observe(sample, nowMs) {
      if (!hasValue) {
        value = sample
        hasValue = true
        lastMs = nowMs
        return
      }
      const elapsed = Math.max(0, nowMs - lastMs)
      lastMs = nowMs
      const alpha = 1 - 2 ** (-elapsed / halfLifeMs)
      value += (sample - value) * Math.max(alpha, 0.01)
    },
  }
}
