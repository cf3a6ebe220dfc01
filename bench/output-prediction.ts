// `node --import tsx bench/output-prediction.ts [traces-dir]`: how well Aya predicts output lengths
// before dispatch (issue 5, E). Every trace in the folder is replayed in arrival order through the
// online predictor and two naive ones; each request is predicted before its true length is seen.
// `max_tokens` is the loader's cap for the trace (the power of two at or above its longest output),
// the same cap `aya bench` sends. Prints one markdown table per trace. The predictor's cost per call
// is timed by `npm run bench:hot-paths`.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  evaluateOutputPrediction,
  type PredictorErrors,
} from '../src/bench/output-prediction-eval.ts'
import { loadTrace } from '../src/bench/trace-loader.ts'

const tracesDir = process.argv[2] ?? join(import.meta.dirname, '..', '..', 'shared', 'traces')
const files = readdirSync(tracesDir)
  .filter((name) => name.endsWith('.csv') || name.endsWith('.jsonl'))
  .sort()

const pct = (share: number): string => `${(100 * share).toFixed(1)} %`

function row(e: PredictorErrors): string {
  return [
    e.predictor,
    `${e.maePct.toFixed(1)} %`,
    e.p50AbsErr.toFixed(0),
    e.medianRatio.toFixed(2),
    pct(e.within2xShare),
    e.p90Coverage === undefined ? '—' : pct(e.p90Coverage),
    e.sumRatio.toFixed(2),
    e.meanSumRatio === undefined ? '—' : e.meanSumRatio.toFixed(2),
  ].join(' | ')
}

for (const file of files) {
  // No context limit to clip against, and ShareGPT needs some arrival rate: only order matters.
  const trace = await loadTrace(join(tracesDir, file), { maxModelLen: 2 ** 30, ratePerSecond: 1 })
  const report = evaluateOutputPrediction(trace.requests, { maxTokens: trace.maxTokens })
  console.log(`\n### ${file} (${report.requests} requests, max_tokens ${report.maxTokens})\n`)
  console.log(
    '| predictor | MAE % of actual | median abs err (tokens) | median pred/actual | within 2× | actual ≤ p90 | Σp50/Σactual | Σmean/Σactual |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const e of report.predictors) console.log(`| ${row(e)} |`)
  console.log(
    '\nOutput still to come once a response has generated g tokens (the KV re-estimate), conditional on g against the dispatch mean minus g:\n',
  )
  console.log(
    '| g | requests past g | MAE %, conditional | Σpred/Σactual, conditional | MAE %, mean − g | Σpred/Σactual, mean − g |',
  )
  console.log('|---:|---:|---:|---:|---:|---:|')
  for (const r of report.remaining) {
    console.log(
      `| ${r.generated} | ${r.requests} | ${r.conditionalMaePct.toFixed(1)} % | ${r.conditionalSumRatio.toFixed(2)} | ${r.unconditionalMaePct.toFixed(1)} % | ${r.unconditionalSumRatio.toFixed(2)} |`,
    )
  }
}
