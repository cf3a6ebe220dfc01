import type { PolicyResult } from './policy-summary.ts'

export interface KneeSearchOptions {
  readonly min: number
  readonly max: number
  /** Stop when the bracket's ratio is within 1 + precision (0.05 = 5 %). */
  readonly precision: number
}

/** A run passes when TTFT p90 is within the SLO and at most 1 % of requests failed. */
export function passesSlo(result: PolicyResult, sloTtftMs: number): boolean {
  const total = result.completed + result.failed
  return result.ttftP90Ms <= sloTtftMs && result.failed <= 0.01 * total
}

/**
 * The highest rate scale in [min, max] that passes, by geometric bisection (load is assumed to
 * hurt monotonically). Returns null when even `min` fails, and `max` when it passes.
 */
export async function findKnee(
  passes: (rateScale: number) => Promise<boolean>,
  options: KneeSearchOptions,
): Promise<number | null> {
  const { min, max, precision } = options
  if (!(await passes(min))) return null
  if (max <= min || (await passes(max))) return max
  let lo = min
  let hi = max
  while (hi / lo > 1 + precision) {
    const mid = Math.sqrt(lo * hi)
    // A precision finer than a double's spacing (1 + 1e-300 is 1): once lo and hi are neighbours
    // their midpoint is one of them, and bisection would run the same rate scale forever.
    if (mid <= lo || mid >= hi) break
    if (await passes(mid)) lo = mid
    else hi = mid
  }
  return lo
}
