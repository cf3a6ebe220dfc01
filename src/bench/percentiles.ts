/**
 * Nearest-rank percentile of ascending `sorted` (q in (0, 1]): the smallest value with at least
 * q·n values at or below it. NaN when empty. Infinity is a value like any other, so failures
 * recorded as infinite push high percentiles to infinity once they are more than 1 − q of the runs.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return Number.NaN
  const rank = Math.min(n, Math.max(1, Math.ceil(q * n)))
  return sorted[rank - 1]!
}

export function sortedNumbers(values: Iterable<number>): Float64Array {
  return Float64Array.from(values).sort()
}

/** A growable array of doubles, for pooling millions of inter-token gaps cheaply. */
export interface NumberPool {
  push(value: number): void
  readonly length: number
  sorted(): Float64Array
}

export function createNumberPool(initialCapacity = 1024): NumberPool {
  let data = new Float64Array(initialCapacity)
  let length = 0
  return {
    push(value) {
      if (length === data.length) {
        const next = new Float64Array(data.length * 2)
        next.set(data)
        data = next
      }
      data[length++] = value
    },
    get length() {
      return length
    },
    sorted: () => data.slice(0, length).sort(),
  }
}
