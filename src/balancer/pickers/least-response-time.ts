import { z } from 'zod'
import type { Endpoint } from '../../upstream/endpoint.ts'
import { isExcluded, type PickContext, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createSmoothState, pickSmooth } from './smooth-weighted.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'
import { buildWeightIndex, pickByWeight, weightOf } from './weight-index.ts'

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
 * Full scan for the lowest `latencyEwmaMs * (inflight + 1) / weight`: expected wait, including the
 * queue this request would join. Peak EWMA (on the endpoint) reacts to a slow response at once.
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
    ...createSmoothState(eligible),
    weights: buildWeightIndex(eligible),
  }))
  return {
    name: 'least-response-time',
    pick(eligible, ctx) {
      if (eligible.length === 0) return undefined
      const { current, scores, weights } = stateFor(eligible)
      if (ctx.attempt === 0 && options.explorationShare > 0) {
        if (deps.random() < options.explorationShare) {
          return pickByWeight(eligible, weights, ctx, deps.random)
        }
      }
      const standInMs = bestSampledLatencyMs(eligible, ctx)
      let min = Number.POSITIVE_INFINITY
      for (let i = 0; i < eligible.length; i++) {
        const endpoint = eligible[i]!
        if (isExcluded(endpoint, ctx)) {
          scores[i] = Number.NaN
          continue
        }
        const cost = costOf(endpoint, standInMs)
        scores[i] = cost
        if (cost < min) min = cost
      }
      const winner = pickSmooth(eligible, current, scores, min + min * TIE_TOLERANCE)
      return winner < 0 ? undefined : eligible[winner]
    },
  }
}

function bestSampledLatencyMs(eligible: readonly Endpoint[], ctx: PickContext): number {
  let best = Number.POSITIVE_INFINITY
  for (let i = 0; i < eligible.length; i++) {
    const endpoint = eligible[i]!
    if (endpoint.latencySamples === 0 || isExcluded(endpoint, ctx)) continue
    if (endpoint.latencyEwmaMs < best) best = endpoint.latencyEwmaMs
  }
  // With nothing sampled yet, any common latency makes the cost plain weighted least-connections.
  return Math.max(best === Number.POSITIVE_INFINITY ? 1 : best, MIN_LATENCY_MS)
}

function costOf(endpoint: Endpoint, standInMs: number): number {
  const weight = weightOf(endpoint)
  if (weight === 0) return Number.POSITIVE_INFINITY
  const unsampled = endpoint.latencySamples === 0
  if (unsampled && endpoint.inflight === 0) return 0
  const latencyMs = unsampled ? standInMs : Math.max(endpoint.latencyEwmaMs, MIN_LATENCY_MS)
  return (latencyMs * (endpoint.inflight + 1)) / weight
}

export const leastResponseTimePicker = definePicker({
  name: 'least-response-time',
  usesHashKey: false,
  optionsSchema: leastResponseTimeOptionsSchema,
  create: (options, deps) => createLeastResponseTimePicker(options, deps),
})
