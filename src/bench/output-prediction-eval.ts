import {
  createOutputLengthPredictor,
  type OutputLengthKey,
  type OutputLengthPredictor,
  type OutputLengthPredictorOptions,
} from '../llm/output-length-predictor.ts'

/** What the evaluation needs of a trace request: `TraceRequest` fits. */
export interface OutputPredictionRow {
  readonly inputTokens: number
  readonly outputTokens: number
}

export interface OutputPredictionOptions {
  /** The `max_tokens` every request is sent with: a cap on every prediction. */
  readonly maxTokens: number
  readonly predictor?: OutputLengthPredictorOptions
}

/** Errors of one predictor's median prediction against the true output lengths. */
export interface PredictorErrors {
  readonly predictor: string
  /** Σ |predicted − actual| ÷ Σ actual, in percent (weighted absolute percentage error). */
  readonly maePct: number
  /** Median of |predicted − actual|, in tokens. */
  readonly p50AbsErr: number
  /** Median of predicted ÷ actual: 1 is unbiased at the median, below 1 under-predicts. */
  readonly medianRatio: number
  /** Share of requests predicted within a factor of 2 (0.5 ≤ predicted ÷ actual ≤ 2). */
  readonly within2xShare: number
  /** Share of requests whose actual length is at most the predicted p90; undefined without one. */
  readonly p90Coverage: number | undefined
  /** Σ predicted ÷ Σ actual: how far KV accounting that charges the median would drift. */
  readonly sumRatio: number
  /** Σ predicted mean ÷ Σ actual, for predictors that give a mean (the sketch's E[min(X, cap)]). */
  readonly meanSumRatio: number | undefined
}

/**
 * How well the KV re-estimate predicts the output still to come once a response has generated
 * `generated` tokens, over the requests that got that far: the conditional remainder the lease
 * charges (`OutputLengthPredictor.remaining`) against the dispatch mean minus what was generated.
 */
export interface RemainingErrors {
  readonly generated: number
  /** Requests whose output ran past `generated`. */
  readonly requests: number
  /** Σ |predicted remainder − actual remainder| ÷ Σ actual remainder, percent. */
  readonly conditionalMaePct: number
  /** Σ predicted ÷ Σ actual remainder: how far the KV charge of streams this long drifts. */
  readonly conditionalSumRatio: number
  readonly unconditionalMaePct: number
  readonly unconditionalSumRatio: number
}

export interface OutputPredictionReport {
  readonly requests: number
  readonly maxTokens: number
  readonly predictors: readonly PredictorErrors[]
  readonly remaining: readonly RemainingErrors[]
}

/** Where the remainder is scored: early, typical and late in a response. */
const REMAINING_CHECKPOINTS = [16, 64, 256] as const

interface Prediction {
  readonly p50: number
  readonly p90: number | undefined
  readonly mean: number | undefined
}

/** An online predictor under evaluation: asked before each request, told the truth after. */
interface Contender {
  readonly name: string
  predict(row: OutputPredictionRow): Prediction
  observe(row: OutputPredictionRow): void
}

const KEY: OutputLengthKey = { model: 'trace', route: 'default' }

/**
 * Replays the rows in arrival order. Every predictor predicts a request before it sees that
 * request's true length (observe after predict), so the errors are those a live router would
 * have, cold start included. Compared against two naive predictors: the running mean of outputs
 * so far, and `max_tokens` itself (what a router that reserves the cap assumes).
 */
export function evaluateOutputPrediction(
  rows: readonly OutputPredictionRow[],
  options: OutputPredictionOptions,
): OutputPredictionReport {
  const cap = options.maxTokens
  // The full sketch also scores the remainder of each response, before it learns the request.
  const sketch = createOutputLengthPredictor(options.predictor)
  const contenders = [
    sketchContender('sketch', sketch, cap, true),
    sketchContender(
      'sketch, no prompt bucket',
      createOutputLengthPredictor(options.predictor),
      cap,
      false,
    ),
    meanContender(options),
    {
      name: 'max_tokens',
      predict: () => ({ p50: cap, p90: cap, mean: cap }),
      observe: () => {},
    } satisfies Contender,
  ]
  const predictions = contenders.map(() => [] as Prediction[])
  const sums = REMAINING_CHECKPOINTS.map((generated) => ({
    generated,
    requests: 0,
    actual: 0,
    conditional: 0,
    conditionalAbs: 0,
    unconditional: 0,
    unconditionalAbs: 0,
  }))
  for (const row of rows) {
    for (const [i, contender] of contenders.entries()) predictions[i]!.push(contender.predict(row))
    const mean = predictions[0]!.at(-1)!.mean ?? 0
    for (const at of sums) {
      if (row.outputTokens <= at.generated) continue
      const actual = row.outputTokens - at.generated
      const conditional = sketch.remaining(KEY, row.inputTokens, cap, at.generated)
      const unconditional = Math.max(0, mean - at.generated)
      at.requests++
      at.actual += actual
      at.conditional += conditional
      at.conditionalAbs += Math.abs(conditional - actual)
      at.unconditional += unconditional
      at.unconditionalAbs += Math.abs(unconditional - actual)
    }
    for (const contender of contenders) contender.observe(row)
  }
  const share = (part: number, whole: number) => (whole > 0 ? part / whole : 0)
  return {
    requests: rows.length,
    maxTokens: cap,
    predictors: contenders.map((c, i) => errorsOf(c.name, rows, predictions[i]!)),
    remaining: sums.map((at) => ({
      generated: at.generated,
      requests: at.requests,
      conditionalMaePct: 100 * share(at.conditionalAbs, at.actual),
      conditionalSumRatio: share(at.conditional, at.actual),
      unconditionalMaePct: 100 * share(at.unconditionalAbs, at.actual),
      unconditionalSumRatio: share(at.unconditional, at.actual),
    })),
  }
}

function sketchContender(
  name: string,
  predictor: OutputLengthPredictor,
  maxTokens: number,
  usePromptLength: boolean,
): Contender {
  const promptOf = (row: OutputPredictionRow) => (usePromptLength ? row.inputTokens : 0)
  return {
    name,
    predict: (row) => predictor.predict(KEY, promptOf(row), maxTokens),
    observe: (row) => predictor.observe(KEY, promptOf(row), maxTokens, row.outputTokens),
  }
}

function meanContender(options: OutputPredictionOptions): Contender {
  // Before the first observation it says what the sketch's prior says, so both start level.
  const priorTokens = Math.min(options.maxTokens, options.predictor?.priorP50Tokens ?? 256)
  let sum = 0
  let n = 0
  return {
    name: 'global mean',
    predict: () => {
      const mean = n === 0 ? priorTokens : Math.round(sum / n)
      return { p50: mean, p90: undefined, mean }
    },
    observe: (row) => {
      sum += row.outputTokens
      n++
    },
  }
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN
  values.sort((a, b) => a - b)
  const mid = values.length >> 1
  return values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2
}

function errorsOf(
  predictor: string,
  rows: readonly OutputPredictionRow[],
  predictions: readonly Prediction[],
): PredictorErrors {
  let absSum = 0
  let actualSum = 0
  let predictedSum = 0
  let within2x = 0
  let covered = 0
  let hasP90 = true
  let meanSum = 0
  let hasMean = true
  const absErrors: number[] = []
  const ratios: number[] = []
  for (const [i, row] of rows.entries()) {
    const { p50, p90, mean } = predictions[i]!
    const actual = row.outputTokens
    absSum += Math.abs(p50 - actual)
    actualSum += actual
    predictedSum += p50
    absErrors.push(Math.abs(p50 - actual))
    // An empty output would divide by zero; one token is the least a ratio can be taken against.
    const ratio = Math.max(1, p50) / Math.max(1, actual)
    ratios.push(ratio)
    if (ratio >= 0.5 && ratio <= 2) within2x++
    if (p90 === undefined) hasP90 = false
    else if (actual <= p90) covered++
    if (mean === undefined) hasMean = false
    else meanSum += mean
  }
  const n = Math.max(1, rows.length)
  return {
    predictor,
    maePct: actualSum > 0 ? (100 * absSum) / actualSum : 0,
    p50AbsErr: median(absErrors),
    medianRatio: median(ratios),
    within2xShare: within2x / n,
    p90Coverage: hasP90 ? covered / n : undefined,
    sumRatio: actualSum > 0 ? predictedSum / actualSum : 0,
    meanSumRatio: hasMean && actualSum > 0 ? meanSum / actualSum : undefined,
  }
}
