import type { Random } from '../util/random.ts'

/**
 * The item with the highest score; ties go to one of the tied uniformly at random (reservoir
 * sampling: one pass, no allocation), as the published max-score pickers shuffle before they
 * sort. A NaN score never wins. Undefined only when `items` is empty.
 */
export function pickHighest<T>(
  items: readonly T[],
  scoreOf: (item: T) => number,
  random: Random,
): T | undefined {
  let best: T | undefined
  let bestScore = Number.NEGATIVE_INFINITY
  let ties = 0
  for (const item of items) {
    const score = scoreOf(item)
    if (Number.isNaN(score) || score < bestScore) continue
    if (best === undefined || score > bestScore) {
      best = item
      bestScore = score
      ties = 1
      continue
    }
    ties++
    if (random() * ties < 1) best = item
  }
  return best
}

/** The item with the lowest score, ties at random: least-load pickers. */
export function pickLowest<T>(
  items: readonly T[],
  scoreOf: (item: T) => number,
  random: Random,
): T | undefined {
  return pickHighest(items, (item) => -scoreOf(item), random)
}
