/**
 * A quantile sketch for token counts: a log-bucket histogram with exponential decay.
 *
 * Values below 8 get a bucket each; above, every octave is cut into 8 buckets, so a quantile is
 * off by at most 1/8 of its value (about 6 % after interpolation) in fixed memory: 120 doubles,
 * 960 bytes, covering 0 to 131,071 tokens (larger values land in the last bucket). Decay is by
 * observation, not by time, so the sketch is deterministic and needs no clock: after
 * `halfLifeSamples` more observations a sample counts half.
 */
export interface QuantileSketch {
  /** Effective number of samples: the sum of their decayed weights. */
  readonly weight: number
  observe(value: number, weight?: number): void
  /** The q-quantile (0 ≤ q ≤ 1), interpolated within its bucket; 0 when empty. */
  quantile(q: number): number
  /** Adds `weight` × this sketch's share of the mass to each bucket of `into`; nothing if empty. */
  addShares(into: Float64Array, weight: number): void
}

export interface QuantileSketchOptions {
  /** Default: no decay. */
  readonly halfLifeSamples?: number
}

const LINEAR_LIMIT = 8
const SUB_BUCKETS = 8
const FIRST_OCTAVE = 3
const END_OCTAVE = 17
export const SKETCH_BUCKETS = LINEAR_LIMIT + (END_OCTAVE - FIRST_OCTAVE) * SUB_BUCKETS
/** Weights are stored multiplied by a growing factor (see `observe`); rescaled past this. */
const RESCALE_AT = 1e100

export function bucketOf(value: number): number {
  if (!(value > 0)) return 0
  if (value < LINEAR_LIMIT) return Math.floor(value)
  const octave = Math.floor(Math.log2(value))
  if (octave >= END_OCTAVE) return SKETCH_BUCKETS - 1
  const sub = Math.floor((value / 2 ** octave - 1) * SUB_BUCKETS)
  return LINEAR_LIMIT + (octave - FIRST_OCTAVE) * SUB_BUCKETS + Math.min(sub, SUB_BUCKETS - 1)
}

/** Bucket bounds, computed once: quantile scans read them for every bucket. */
const LOWS = new Float64Array(SKETCH_BUCKETS + 1)
for (let b = 0; b <= SKETCH_BUCKETS; b++) {
  const octave = FIRST_OCTAVE + Math.floor((b - LINEAR_LIMIT) / SUB_BUCKETS)
  const sub = (b - LINEAR_LIMIT) % SUB_BUCKETS
  LOWS[b] = b < LINEAR_LIMIT ? b : 2 ** octave * (1 + sub / SUB_BUCKETS)
}

/** The smallest value in a bucket. */
export function bucketLow(bucket: number): number {
  return LOWS[bucket]!
}

/**
 * The value at fraction `f` of a bucket's mass. Token counts are integers and every bucket's
 * bounds are too, so a bucket [lo, hi) holds lo … hi − 1: a bucket of width one is exact.
 */
export function valueInBucket(bucket: number, f: number): number {
  const low = LOWS[bucket]!
  return low + f * (LOWS[bucket + 1]! - 1 - low)
}

export function createQuantileSketch(options: QuantileSketchOptions = {}): QuantileSketch {
  const counts = new Float64Array(SKETCH_BUCKETS)
  const growth = 2 ** (1 / (options.halfLifeSamples ?? Number.POSITIVE_INFINITY))
  let total = 0
  // Instead of multiplying every bucket by the decay on each observation, new samples are added
  // with a weight that grows by 1/decay each time: the same ratios, O(1) per observation.
  let scale = 1

  return {
    get weight() {
      return total / scale
    },
    observe(value, weight = 1) {
      scale *= growth
      const add = weight * scale
      counts[bucketOf(value)]! += add
      total += add
      if (scale > RESCALE_AT) {
        for (let b = 0; b < SKETCH_BUCKETS; b++) counts[b]! /= scale
        total /= scale
        scale = 1
      }
    },
    quantile(q) {
      if (total <= 0) return 0
      const target = Math.min(1, Math.max(0, q)) * total
      let cumulative = 0
      let last = 0
      for (let b = 0; b < SKETCH_BUCKETS; b++) {
        const c = counts[b]!
        if (c <= 0) continue
        if (cumulative + c >= target) return valueInBucket(b, (target - cumulative) / c)
        cumulative += c
        last = b
      }
      return valueInBucket(last, 1)
    },
    addShares(into, weight) {
      if (total <= 0) return
      const factor = weight / total
      for (let b = 0; b < SKETCH_BUCKETS; b++) into[b]! += factor * counts[b]!
    },
  }
}

/** Bucket masses summing to 1, as `addShares` fills them: the q-quantile of that distribution. */
export function quantileOfShares(shares: Float64Array, q: number): number {
  const target = Math.min(1, Math.max(0, q))
  let cumulative = 0
  let last = 0
  for (let b = 0; b < SKETCH_BUCKETS; b++) {
    const mass = shares[b]!
    if (mass <= 0) continue
    if (cumulative + mass >= target) return valueInBucket(b, (target - cumulative) / mass)
    cumulative += mass
    last = b
  }
  return valueInBucket(last, 1)
}

/**
 * The mean of bucket masses summing to 1, each bucket at the midpoint of the values it holds, and
 * no value above `cap`: E[min(X, cap)].
 */
export function meanOfShares(shares: Float64Array, cap = Number.POSITIVE_INFINITY): number {
  let mean = 0
  for (let b = 0; b < SKETCH_BUCKETS; b++) {
    const mass = shares[b]!
    if (mass > 0) mean += mass * Math.min(cap, valueInBucket(b, 0.5))
  }
  return mean
}

/**
 * The mean of the mass above `above`, no value above `cap`: E[min(X, cap) | X > above]; undefined
 * when no mass lies above it, or `above` is past the sketch's range. A bucket that straddles `above` counts only its part above it, as
 * if its mass were spread evenly over its values.
 */
export function meanAboveOfShares(
  shares: Float64Array,
  above: number,
  cap = Number.POSITIVE_INFINITY,
): number | undefined {
  // The last bucket holds everything past the sketch's range: what lies beyond there is unknown.
  const first = bucketOf(above)
  if (first === SKETCH_BUCKETS - 1) return undefined
  let mass = 0
  let sum = 0
  for (let b = first; b < SKETCH_BUCKETS; b++) {
    const m = shares[b]!
    if (m <= 0) continue
    const low = LOWS[b]!
    const high = LOWS[b + 1]! - 1
    // Values above `above` in this bucket: from max(low, above + 1) to high.
    const from = Math.max(low, Math.floor(above) + 1)
    if (from > high && b < SKETCH_BUCKETS - 1) continue
    const part = b === SKETCH_BUCKETS - 1 || high <= low ? 1 : (high - from + 1) / (high - low + 1)
    const value = b === SKETCH_BUCKETS - 1 ? Math.max(from, (low + high) / 2) : (from + high) / 2
    mass += m * part
    sum += m * part * Math.min(cap, value)
  }
  return mass > 0 ? sum / mass : undefined
}
