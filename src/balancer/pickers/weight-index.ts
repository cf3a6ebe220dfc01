import type { Endpoint } from '../../upstream/endpoint.ts'
import { type Random, randomInt } from '../../util/random.ts'
import { isExcluded, type PickContext } from '../picker.ts'

/**
 * The weight a picker gives an endpoint. Config keeps weights >= 1; anything non-positive or
 * non-finite gets no share rather than breaking the arithmetic, and pickers still return such an
 * endpoint as a last resort when nothing else is left.
 */
export function weightOf(endpoint: Endpoint): number {
  const weight = endpoint.weight
  return weight > 0 && Number.isFinite(weight) ? weight : 0
}

/** Prefix sums of a snapshot's weights, built once per snapshot. */
export interface WeightIndex {
  /** `cumulative[i]` is the total weight of `eligible[0..i]`. */
  readonly cumulative: Float64Array
  readonly total: number
}

export function buildWeightIndex(eligible: readonly Endpoint[]): WeightIndex {
  const cumulative = new Float64Array(eligible.length)
  let total = 0
  for (let i = 0; i < eligible.length; i++) {
    total += weightOf(eligible[i]!)
    cumulative[i] = total
  }
  return { cumulative, total }
}

/**
 * A weight-proportional draw among the endpoints not excluded: O(log n) on first tries, O(n) on
 * retries (which are rare, and whose exclusions change the total anyway).
 */
export function pickByWeight(
  eligible: readonly Endpoint[],
  index: WeightIndex,
  ctx: PickContext,
  random: Random,
): Endpoint | undefined {
  const n = eligible.length
  if (n === 0) return undefined
  if (ctx.exclude !== undefined && ctx.exclude.size > 0)
    return pickByWeightExcluding(eligible, ctx, random)
  if (index.total === 0) return eligible[randomInt(random, n)]
  const target = random() * index.total
  let lo = 0
  let hi = n - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (index.cumulative[mid]! > target) hi = mid
    else lo = mid + 1
  }
  return eligible[lo]
}

function pickByWeightExcluding(
  eligible: readonly Endpoint[],
  ctx: PickContext,
  random: Random,
): Endpoint | undefined {
  let total = 0
  let count = 0
  for (let i = 0; i < eligible.length; i++) {
    const endpoint = eligible[i]!
    if (isExcluded(endpoint, ctx)) continue
    total += weightOf(endpoint)
    count++
  }
  if (count === 0) return undefined
  if (total === 0) return nthNotExcluded(eligible, ctx, randomInt(random, count))
  let target = random() * total
  let last: Endpoint | undefined
  for (let i = 0; i < eligible.length; i++) {
    const endpoint = eligible[i]!
    const weight = weightOf(endpoint)
    if (weight === 0 || isExcluded(endpoint, ctx)) continue
    target -= weight
    last = endpoint
    if (target < 0) return endpoint
  }
  // Only reached through floating-point round-off on the last candidate.
  return last
}

function nthNotExcluded(
  eligible: readonly Endpoint[],
  ctx: PickContext,
  nth: number,
): Endpoint | undefined {
  let remaining = nth
  for (let i = 0; i < eligible.length; i++) {
    const endpoint = eligible[i]!
    if (isExcluded(endpoint, ctx)) continue
    if (remaining === 0) return endpoint
    remaining--
  }
  return undefined
}

/** The first endpoint not excluded, for fallbacks that must return something if anything is left. */
export function firstNotExcluded(
  endpoints: readonly Endpoint[],
  ctx: PickContext,
): Endpoint | undefined {
  return nthNotExcluded(endpoints, ctx, 0)
}
