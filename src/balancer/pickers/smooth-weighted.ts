import type { Endpoint } from '../../upstream/endpoint.ts'
import { weightOf } from './weight-index.ts'

/**
 * nginx's smooth weighted round robin, one step: every candidate gains its weight, the richest
 * wins and pays back the round's total. Weights 5,1,1 give `a a b a c a a`: heavy endpoints are
 * interleaved with light ones instead of served in bursts.
 *
 * Only endpoints whose score is `<= maxScore` take part (a NaN score never does), so the same
 * step breaks ties among the least loaded in the least-* pickers. Non-candidates keep their
 * accumulated weight, as in nginx's least_conn. Returns the winner's index, or -1 when none.
 */
export function pickSmooth(
  eligible: readonly Endpoint[],
  current: Float64Array,
  scores: Float64Array,
  maxScore: number,
): number {
  let total = 0
  let best = -1
  for (let i = 0; i < eligible.length; i++) {
    if (!(scores[i]! <= maxScore)) continue
    const weight = weightOf(eligible[i]!)
    current[i]! += weight
    total += weight
    if (best < 0 || current[i]! > current[best]!) best = i
  }
  if (best >= 0) current[best]! -= total
  return best
}

/** Per-snapshot state for pickers that run smooth WRR: accumulated weights and a score buffer. */
export interface SmoothState {
  readonly current: Float64Array
  readonly scores: Float64Array
}

export function createSmoothState(eligible: readonly Endpoint[]): SmoothState {
  return {
    current: new Float64Array(eligible.length),
    scores: new Float64Array(eligible.length),
  }
}
