import {
  bucketLow,
  createQuantileSketch,
  meanAboveOfShares,
  meanOfShares,
  type QuantileSketch,
  quantileOfShares,
  SKETCH_BUCKETS,
} from './quantile-sketch.ts'

/**
 * Output tokens predicted before dispatch, learned online from what requests really generated.
 *
 * A distribution, not a mean: output lengths are skewed (Azure code: mean 28, median 13, p99 249),
 * and the scheduler needs a typical length for its queue estimate and a pessimistic one for KV
 * headroom. Each cell is a decaying quantile sketch. Cells are keyed, finest first, by
 *   1. model, route or tenant, prompt-length bucket, `max_tokens` bucket ('cell');
 *   2. model, route, `max_tokens` bucket ('route');
 *   3. model, `max_tokens` bucket ('model');
 *   4. model ('model-any-cap');
 * and below them sits a prior. A prediction mixes the levels: each takes n / (n + minSamples) of
 * what its finer levels left, so a fresh cell leans on its parent and takes over as it fills, with
 * no cliff at a threshold. Every prediction is capped at `max_tokens`.
 */
export interface OutputLengthPredictor {
  predict(
    key: OutputLengthKey,
    promptTokens: number,
    maxTokens: number | undefined,
  ): OutputPrediction
  /** Any quantile (0 ≤ q ≤ 1) of the predicted output length, capped at `maxTokens`. */
  quantile(
    key: OutputLengthKey,
    promptTokens: number,
    maxTokens: number | undefined,
    q: number,
  ): number
  /**
   * Output still to come for a response that has generated `generatedTokens` so far: the expected
   * length given that it is at least that long, E[min(output, max_tokens) | output > generated],
   * minus what it has generated. At least 1 until the cap, 0 at the cap. Past every length seen
   * only the prior has mass left, so its tail decides however little it weighs (after 500
   * responses of 100–299 tokens: 10 more at 300 generated, 572 at 320); past the sketch's range
   * (122,880 tokens) a response is expected to go on a quarter as far again.
   */
  remaining(
    key: OutputLengthKey,
    promptTokens: number,
    maxTokens: number | undefined,
    generatedTokens: number,
  ): number
  observe(
    key: OutputLengthKey,
    promptTokens: number,
    maxTokens: number | undefined,
    actualOutputTokens: number,
  ): void
  /** Cells held now, at most `maxCells`. */
  readonly cells: number
}

export interface OutputLengthKey {
  readonly model: string
  /** The route or tenant: whoever shapes what is asked. */
  readonly route: string
}

/** The level that weighs most in a prediction, for explaining a decision. */
export type PredictionBasis = 'cell' | 'route' | 'model' | 'model-any-cap' | 'prior'

export interface OutputPrediction {
  readonly p50: number
  readonly p90: number
  /**
   * The expected length, E[min(output, max_tokens)]. Skewed lengths put it well above p50, and it
   * is what sums right: KV accounting over many requests should charge this, not the median.
   */
  readonly mean: number
  readonly basis: PredictionBasis
  /** Effective samples behind the basis level (decayed); 0 for the prior. */
  readonly samples: number
}

export interface OutputLengthPredictorOptions {
  /** Cells kept; the least recently observed is dropped. Default 4096 (about 4.5 MB). */
  readonly maxCells?: number
  /** Observations of a cell after which an older one counts half. Default 500. */
  readonly halfLifeSamples?: number
  /** Samples at which a cell weighs as much as its parent. Default 16. */
  readonly minSamples?: number
  /** The prior: a log-normal with this median and 90th percentile. Defaults 256 and 1024. */
  readonly priorP50Tokens?: number
  readonly priorP90Tokens?: number
  /** Samples at which the coarsest level weighs as much as the prior. Default 2. */
  readonly priorSamples?: number
}

const LEVELS: readonly PredictionBasis[] = ['cell', 'route', 'model', 'model-any-cap', 'prior']
const Z90 = 1.2815515655446004

/** log2 buckets of prompt length: 0 for an empty prompt, then 1, 2–3, 4–7, … */
export function promptBucketOf(promptTokens: number): number {
  return promptTokens >= 1 ? 1 + Math.floor(Math.log2(promptTokens)) : 0
}

/** log2 buckets of the cap, rounded up: 1000 and 1024 share one. 'none' when there is no cap. */
export function capBucketOf(maxTokens: number | undefined): string {
  return maxTokens === undefined ? 'none' : String(Math.ceil(Math.log2(Math.max(1, maxTokens))))
}

export function createOutputLengthPredictor(
  options: OutputLengthPredictorOptions = {},
): OutputLengthPredictor {
  const maxCells = Math.max(4, options.maxCells ?? 4096)
  const halfLifeSamples = options.halfLifeSamples ?? 500
  const minSamples = options.minSamples ?? 16
  const priorSamples = options.priorSamples ?? 2
  const prior = logNormalSketch(options.priorP50Tokens ?? 256, options.priorP90Tokens ?? 1024)
  // Insertion order is recency of observation; eviction takes the first.
  const cells = new Map<string, QuantileSketch>()
  // Scratch for one prediction: the call is synchronous, so one set serves every call.
  const keys: string[] = new Array(LEVELS.length - 1)
  const shares = new Float64Array(SKETCH_BUCKETS)

  const fillKeys = (key: OutputLengthKey, promptTokens: number, maxTokens: number | undefined) => {
    const cap = capBucketOf(maxTokens)
    // The level number leads each key, so keys of different levels never collide.
    keys[0] = `0\0${key.model}\0${key.route}\0${promptBucketOf(promptTokens)}\0${cap}`
    keys[1] = `1\0${key.model}\0${key.route}\0${cap}`
    keys[2] = `2\0${key.model}\0${cap}`
    keys[3] = `3\0${key.model}`
  }

  /** Fills `shares` with the mixed distribution; returns the level that weighs most. */
  const mix = (): number => {
    shares.fill(0)
    let remaining = 1
    let heaviest = LEVELS.length - 1
    let heaviestWeight = 0
    for (let level = 0; level < keys.length; level++) {
      const sketch = cells.get(keys[level]!)
      if (sketch === undefined) continue
      const n = sketch.weight
      const k = level === keys.length - 1 ? priorSamples : minSamples
      const w = (remaining * n) / (n + k)
      if (!(w > 0)) continue
      sketch.addShares(shares, w)
      remaining -= w
      if (w > heaviestWeight) {
        heaviestWeight = w
        heaviest = level
      }
    }
    prior.addShares(shares, remaining)
    return remaining > heaviestWeight ? LEVELS.length - 1 : heaviest
  }

  const capped = (value: number, maxTokens: number | undefined): number => {
    if (maxTokens !== undefined && maxTokens <= 0) return 0
    const tokens = Math.max(1, Math.round(value))
    return maxTokens === undefined ? tokens : Math.min(maxTokens, tokens)
  }

  return {
    predict(key, promptTokens, maxTokens) {
      fillKeys(key, promptTokens, maxTokens)
      const heaviest = mix()
      const basisSketch = heaviest < keys.length ? cells.get(keys[heaviest]!) : undefined
      return {
        p50: capped(quantileOfShares(shares, 0.5), maxTokens),
        p90: capped(quantileOfShares(shares, 0.9), maxTokens),
        mean: capped(meanOfShares(shares, maxTokens), maxTokens),
        basis: LEVELS[heaviest]!,
        samples: basisSketch?.weight ?? 0,
      }
    },
    quantile(key, promptTokens, maxTokens, q) {
      fillKeys(key, promptTokens, maxTokens)
      mix()
      return capped(quantileOfShares(shares, q), maxTokens)
    },
    remaining(key, promptTokens, maxTokens, generatedTokens) {
      const left = maxTokens === undefined ? Number.POSITIVE_INFINITY : maxTokens - generatedTokens
      if (left <= 0) return 0
      fillKeys(key, promptTokens, maxTokens)
      mix()
      const expected = meanAboveOfShares(shares, generatedTokens, maxTokens)
      const more =
        expected === undefined ? Math.ceil(generatedTokens / 4) : expected - generatedTokens
      return Math.min(left, Math.max(1, Math.round(more)))
    },
    observe(key, promptTokens, maxTokens, rawOutputTokens) {
      if (!(rawOutputTokens >= 0)) return
      // A sequence cannot outrun its cap: a longer one means the request was misread (a batch
      // counted as one prompt, say), and learning it would skew every level above the cell.
      const actualOutputTokens =
        maxTokens === undefined ? rawOutputTokens : Math.min(maxTokens, rawOutputTokens)
      fillKeys(key, promptTokens, maxTokens)
      for (const cellKey of keys) {
        let sketch = cells.get(cellKey)
        if (sketch === undefined) {
          if (cells.size >= maxCells) {
            const oldest = cells.keys().next().value
            if (oldest !== undefined) cells.delete(oldest)
          }
          sketch = createQuantileSketch({ halfLifeSamples })
        } else {
          cells.delete(cellKey)
        }
        cells.set(cellKey, sketch)
        sketch.observe(actualOutputTokens)
      }
    },
    get cells() {
      return cells.size
    },
  }
}

/** The prior as a sketch: log-normal bucket masses, so it mixes like any other level. */
function logNormalSketch(medianTokens: number, p90Tokens: number): QuantileSketch {
  const mu = Math.log(Math.max(1, medianTokens))
  const sigma = Math.max(
    0.05,
    Math.log(Math.max(p90Tokens, medianTokens * 1.05) / medianTokens) / Z90,
  )
  const sketch = createQuantileSketch()
  let below = 0
  for (let b = 1; b < SKETCH_BUCKETS; b++) {
    const upTo = b === SKETCH_BUCKETS - 1 ? 1 : normalCdf((Math.log(bucketLow(b + 1)) - mu) / sigma)
    if (upTo > below) sketch.observe(bucketLow(b), upTo - below)
    below = upTo
  }
  return sketch
}

/** Φ(x) by Abramowitz & Stegun 7.1.26 (error below 1.5e-7): enough to shape a prior. */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2
  const t = 1 / (1 + 0.3275911 * z)
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
  const erf = 1 - poly * Math.exp(-z * z)
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2
}
