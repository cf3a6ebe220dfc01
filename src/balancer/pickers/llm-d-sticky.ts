import { z } from 'zod'
import { createApproxPrefixProducer, type PrefixMatch } from '../../llm/approx-prefix-producer.ts'
import { pickHighest, pickLowest } from '../../llm/pick-best.ts'
import type { Endpoint, LeaseCost } from '../../upstream/endpoint.ts'
import type { Random } from '../../util/random.ts'
import { isExcluded, type PickContext, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { approxPrefixOptionsShape } from './llm-d-prefix-load.ts'

export const llmdStickyOptionsSchema = z
  .object({
    // The current producer caps at 131,072 tokens: 8,192 blocks of 16.
    ...approxPrefixOptionsShape({ maxPrefixBlocks: 8_192 }),
    /** Endpoints whose prefix score is at least this are sticky. */
    affinityThreshold: z.number().min(0).max(1).default(0.8),
    /** Share of requests that skip the filter, so other endpoints get warm too. */
    explorationProbability: z.number().min(0).max(1).default(0.01),
    /** T_max: stickiness breaks when the warm endpoints' estimated TTFT is this much worse. 0 = always stick. */
    maxTtftPenaltyMs: z.number().min(0).default(18_000),
    /** R_peak: one endpoint's prefill throughput on one full chunk; τ = R_peak × T_max. */
    peakPrefillTokensPerSec: z.number().positive().default(15_928),
    /** The token-load scorer reaches 0 at this many tokens in flight. */
    queueThresholdTokens: z.int().min(1).default(4_194_304),
  })
  .strict()

export type LlmdStickyOptions = z.output<typeof llmdStickyOptionsSchema>

/**
 * llm-d's default since Aug 2026, "sticky until saturated" (research note §1.3, §1.7):
 * 1. `prefix-cache-affinity-filter`: keep the endpoints whose approximate prefix score is at least
 *    `affinityThreshold`, unless (a) none is, (b) with `explorationProbability` the filter is
 *    skipped, or (c) the best sticky endpoint's estimated TTFT exceeds the best other one's by more
 *    than `maxTtftPenaltyMs`, the TTFT estimate being uncached prefill tokens in flight / R_peak.
 *    (c) is a token gap greater than τ = R_peak × T_max.
 * 2. `token-load-scorer`: 1 − min(1, (in flight + this request's uncached tokens there) /
 *    `queueThresholdTokens`), where this request's uncached tokens are prompt × (1 − score).
 * 3. `max-score-picker`, ties at random.
 * In-flight tokens are the router's own count (`endpoint.pendingPrefillTokens`, released at the
 * first token). A request without `ctx.llm` goes to the fewest in-flight requests (llm-d's
 * `active-request-scorer`, its choice for decode-bound traffic).
 */
export function createLlmdStickyPicker(options: LlmdStickyOptions, deps: PickerDeps): Picker {
  const producer = createApproxPrefixProducer(options, deps)
  const placed = new WeakMap<
    PickContext,
    { readonly endpoint: Endpoint; readonly cost: LeaseCost }
  >()

  return {
    name: 'llm-d-sticky',
    pick(eligible, ctx) {
      const candidates = eligible.filter((endpoint) => !isExcluded(endpoint, ctx))
      if (candidates.length === 0) return undefined
      const llm = ctx.llm
      if (llm === undefined) {
        return pickLowest(candidates, (endpoint) => endpoint.inflight, deps.random)
      }
      producer.purgeDeparted(eligible)
      const prefix = producer.match(llm, candidates)
      const kept = affinityFilter(candidates, prefix, options, deps.random)
      const uncachedOf = (endpoint: Endpoint): number =>
        llm.promptTokens * (1 - prefix.scoreOf(endpoint))
      const chosen = pickHighest(
        kept,
        (endpoint) => tokenLoadScore(endpoint.pendingPrefillTokens + uncachedOf(endpoint), options),
        deps.random,
      )!
      if (prefix.hashes.length > 0) producer.record(chosen, prefix.hashes)
      placed.set(ctx, {
        endpoint: chosen,
        cost: {
          prefillTokens: Math.round(uncachedOf(chosen)),
          // The same KV convention as the proxy's default cost: prompt plus the max_tokens cap.
          kvTokens: llm.promptTokens + (llm.maxTokens ?? 0),
        },
      })
      return chosen
    },
    leaseCost(endpoint, ctx) {
      const placement = placed.get(ctx)
      return placement?.endpoint === endpoint ? placement.cost : undefined
    },
  }
}

function affinityFilter(
  candidates: readonly Endpoint[],
  prefix: PrefixMatch,
  options: LlmdStickyOptions,
  random: Random,
): readonly Endpoint[] {
  if (candidates.length <= 1 || options.affinityThreshold <= 0) return candidates
  if (options.explorationProbability > 0 && random() < options.explorationProbability) {
    return candidates
  }
  const sticky: Endpoint[] = []
  const others: Endpoint[] = []
  for (const endpoint of candidates) {
    if (prefix.scoreOf(endpoint) >= options.affinityThreshold) sticky.push(endpoint)
    else others.push(endpoint)
  }
  if (sticky.length === 0) return candidates
  if (options.maxTtftPenaltyMs > 0 && others.length > 0) {
    const penaltyMs = bestTtftMs(sticky, options) - bestTtftMs(others, options)
    if (penaltyMs > options.maxTtftPenaltyMs) return candidates
  }
  return sticky
}

function bestTtftMs(endpoints: readonly Endpoint[], options: LlmdStickyOptions): number {
  let best = Number.POSITIVE_INFINITY
  for (const endpoint of endpoints) {
    best = Math.min(best, (endpoint.pendingPrefillTokens / options.peakPrefillTokensPerSec) * 1000)
  }
  return best
}

function tokenLoadScore(tokens: number, options: LlmdStickyOptions): number {
  if (tokens <= 0) return 1
  return 1 - Math.min(tokens, options.queueThresholdTokens) / options.queueThresholdTokens
}

export const llmdStickyPicker = definePicker({
  name: 'llm-d-sticky',
  hashKey: 'ignored',
  // `autoTune` sizes the prefix index from the engines' `cache_config_info`, as GIE does.
  usesEngineMetrics: true,
  optionsSchema: llmdStickyOptionsSchema,
  create: (options, deps) => createLlmdStickyPicker(options, deps),
})
