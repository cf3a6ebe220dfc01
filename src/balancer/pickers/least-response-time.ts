import { z } from 'zod'
import type { Endpoint } from '../../upstream/endpoint.ts'
import { isExcluded, type PickContext, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createSmoothState, pickSmooth, type SmoothState } from './smooth-weighted.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'
import { buildWeightIndex, pickByWeight } from './weight-index.ts'

export const leastResponseTimeOptionsSchema = z
  .object({
    /** Share of first tries sent to a weight-proportional random endpoint instead of the cheapest. */
    explorationShare: z.number().min(0).max(1).default(0.05),
  })
  .strict()

export type LeastResponseTimeOptions = z.output<typeof leastResponseTimeOptionsSchema>

// Keeps sub-microsecond EWMAs from zeroing the cost and hiding differences in in-flight load.
const MIN_LATENCY_MS = 0.001
// Costs are float products; treat values this close as the tie they are meant to be.
const TIE_TOLERANCE = 1e-9

/**
 * Full scan for the lowest `latencyEwmaMs * (inflight + 1) * attemptsPerSuccess / weight`: expected
 * wait, including the queue this request would join and the attempts it would take to succeed.
 * Peak EWMA (on the endpoint) reacts to a slow response at once; failures never lower it, so an
 * endpoint that fails at once does not look fast (the black hole).
 *
 * - An endpoint with no samples and nothing in flight costs 0, so new endpoints are probed first,
 *   one request at a time; with requests in flight it is costed at the best sampled latency
 *   (optimistic, but the in-flight factor limits how much it takes before its first answer).
 * - Starvation guard (traefik#12306): an endpoint that was slow once never gets a new sample if it is
 *   never picked, so `explorationShare` of first tries go to a weight-proportional random endpoint.
 *   Retries never explore: they want the best endpoint left.
 * - Full scan rather than P2C: upstreams hold tens of endpoints, so the scan is cheap, and P2C's
 *   built-in randomness would send ~1/n^2 of requests to the slowest endpoint, an exploration rate
 *   nobody chose. The in-flight factor keeps one process from herding onto the fastest endpoint.
 *   Ties (a cold start, equal latencies) go to smooth weighted round robin.
 */
export function createLeastResponseTimePicker(
  options: LeastResponseTimeOptions,
  deps: PickerDeps,
): Picker {
  const stateFor = memoizeBySnapshot((eligible) => ({
    smooth: createSmoothState(eligible),
    index: buildWeightIndex(eligible),
  }))
  return {
    name: 'least-response-time',
    pick(eligible, ctx) {
      if (eligible.length === 0) return undefined
      const { smooth, index } = stateFor(eligible)
      if (ctx.attempt === 0 && options.explorationShare > 0) {
        if (deps.random() < options.explorationShare) {
          return pickByWeight(eligible, index, ctx, deps.random)
        }
      }
      const min = scoreCosts(eligible, ctx, smooth)
      const winner = pickSmooth(smooth, min + min * TIE_TOLERANCE)
      return winner < 0 ? undefined : eligible[winner]
    },
  }
}

const UNSAMPLED = -1

/** Writes each endpoint's cost into `scores` (NaN when excluded) and returns the lowest. */
function scoreCosts(eligible: readonly Endpoint[], ctx: PickContext, state: SmoothState): number {
  const { scores, weights } = state
  const hasExclusions = ctx.exclude !== undefined && ctx.exclude.size > 0
  // First pass: latencies, and the best sampled one as the stand-in for endpoints without samples.
  let bestSampledMs = Number.POSITIVE_INFINITY
  for (let i = 0; i < eligible.length; i++) {
    const endpoint = eligible[i]!
    if (hasExclusions && isExcluded(endpoint, ctx)) {
      scores[i] = Number.NaN
    } else if (endpoint.latencySamples === 0) {
      scores[i] = UNSAMPLED
    } else {
      const latencyMs = Math.max(endpoint.latencyEwmaMs, MIN_LATENCY_MS)
      scores[i] = latencyMs
      if (latencyMs < bestSampledMs) bestSampledMs = latencyMs
    }
  }
  // With nothing sampled yet, any common latency makes the cost (inflight + 1) / weight: weighted
  // least-connections counting this request, which can order endpoints unlike inflight / weight.
  const standInMs = bestSampledMs === Number.POSITIVE_INFINITY ? 1 : bestSampledMs
  let min = Number.POSITIVE_INFINITY
  for (let i = 0; i < eligible.length; i++) {
    const latencyMs = scores[i]!
    if (Number.isNaN(latencyMs)) continue
    const { inflight, attemptsPerSuccess } = eligible[i]!
    // An endpoint that failed since its last success is no cold one to probe, and each attempt
    // it is expected to take to succeed costs the client another wait (see `attemptsPerSuccess`).
    const cost =
      latencyMs === UNSAMPLED && inflight === 0 && attemptsPerSuccess === 1
        ? 0
        : ((latencyMs === UNSAMPLED ? standInMs : latencyMs) *
            (inflight + 1) *
            attemptsPerSuccess) /
          weights[i]!
    scores[i] = cost
    if (cost < min) min = cost
  }
  return min
}

export const leastResponseTimePicker = definePicker({
  name: 'least-response-time',
  hashKey: 'ignored',
  optionsSchema: leastResponseTimeOptionsSchema,
  create: (options, deps) => createLeastResponseTimePicker(options, deps),
})
