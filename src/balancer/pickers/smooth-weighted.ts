import type { Endpoint } from '../../upstream/endpoint.ts'
import { weightOf } from './weight-index.ts'

/** Per-snapshot state for pickers that run smooth WRR. Weights are fixed for a snapshot's life. */
export interface SmoothState {
  readonly weights: Float64Array
  /** nginx's `current_weight` per endpoint. */
  readonly current: Float64Array
  /** Scratch space for the caller's per-pick scores, so picks allocate nothing. */
  readonly scores: Float64Array
}

export function createSmoothState(eligible: readonly Endpoint[]): SmoothState {
  const weights = new Float64Array(eligible.length)
  for (let i = 0; i < eligible.length; i++) weights[i] = weightOf(eligible[i]!)
  return {
    weights,
    current: new Float64Array(eligible.length),
    scores: new Float64Array(eligible.length),
  }
}

/**
 * nginx's smooth weighted round robin, one step: every candidate gains its weight, the richest
 * wins and pays back the round's total. Weights 5,1,1 give `a a b a c a a`: heavy endpoints are
 * interleaved with light ones instead of served in bursts.
 *
 * Only endpoints whose score is `<= maxScore` take part (a NaN score never does), so the same
 * step breaks ties among the least loaded in the least-* pickers. Non-candidates keep their
 * accumulated weight, as in nginx's least_conn. Returns the winner's index, or -1 when none.
 */
export function pickSmooth(state: SmoothState, maxScore: number): number {
  const { weights, current, scores } = state
  let total = 0
  let best = -1
  for (let i = 0; i < scores.length; i++) {
    if (!(scores[i]! <= maxScore)) continue
    const weight = weights[i]!
    current[i]! += weight
    total += weight
    if (best < 0 || current[i]! > current[best]!) best = i
  }
  if (best >= 0) current[best]! -= total
  return best
}
