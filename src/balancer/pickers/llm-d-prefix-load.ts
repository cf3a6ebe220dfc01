import { z } from 'zod'
import { createApproxPrefixProducer } from '../../llm/approx-prefix-producer.ts'
import type { EngineSnapshot } from '../../llm/engine-snapshot.ts'
import { pickHighest } from '../../llm/pick-best.ts'
import type { Endpoint } from '../../upstream/endpoint.ts'
import { isExcluded, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'

/** The approximate prefix producer's `policyOptions`, shared by both llm-d policies. */
export function approxPrefixOptionsShape(defaults: { readonly maxPrefixBlocks: number }) {
  return {
    /** Characters per prefix block: 16 tokens × 4 characters. */
    blockSizeChars: z.int().min(1).max(65_536).default(64),
    /** Only the first this many blocks of a prompt are hashed and matched. */
    maxPrefixBlocks: z.int().min(1).max(1_048_576).default(defaults.maxPrefixBlocks),
    /** Blocks remembered per endpoint: (80 − 16) GB / 128 KB per token / 16 tokens a block. */
    lruCapacityPerServer: z.int().min(1).max(100_000_000).default(31_250),
    /** Size each endpoint's memory from its engine's `num_gpu_blocks` when published. */
    autoTune: z.boolean().default(true),
  }
}

export const llmdPrefixLoadOptionsSchema = z
  .object({
    ...approxPrefixOptionsShape({ maxPrefixBlocks: 256 }),
    prefixWeight: z.number().min(0).default(3),
    queueWeight: z.number().min(0).default(2),
    kvCacheWeight: z.number().min(0).default(2),
  })
  .strict()

export type LlmdPrefixLoadOptions = z.output<typeof llmdPrefixLoadOptionsSchema>

/**
 * llm-d's legacy blend, GIE's default profile (research note §1.3, §1.4): a weighted sum of three
 * scorers and a max-score picker, ties at random.
 * - `prefix-cache-scorer`: leading 64-character blocks the endpoint holds / the prompt's blocks
 *   (first 256), from an approximate index written at pick time.
 * - `queue-scorer`: (maxQ − q) / (maxQ − minQ) over scraped `num_requests_waiting`; all 1 if equal.
 * - `kv-cache-utilization-scorer`: 1 − scraped `kv_cache_usage_perc`.
 * An endpoint with no fresh scrape, or whose page leaves out a scorer's gauge, is left unscored by
 * that scorer (0), as llm-d leaves endpoints without metrics out of the queue range. Without
 * `ctx.llm` the prefix score is 0.
 */
export function createLlmdPrefixLoadPicker(
  options: LlmdPrefixLoadOptions,
  deps: PickerDeps,
): Picker {
  const producer = createApproxPrefixProducer(options, deps)
  return {
    name: 'llm-d-prefix-load',
    pick(eligible, ctx) {
      const candidates = eligible.filter((endpoint) => !isExcluded(endpoint, ctx))
      if (candidates.length === 0) return undefined
      producer.purgeDeparted(eligible)
      const prefix = producer.match(ctx.llm, candidates)
      const snapshots = candidates.map((endpoint) => deps.engineMetrics?.get(endpoint.id))
      const queueScoreOf = queueScorer(snapshots)
      const scores = new Map<Endpoint, number>()
      candidates.forEach((endpoint, i) => {
        const snapshot = snapshots[i]
        scores.set(
          endpoint,
          options.prefixWeight * prefix.scoreOf(endpoint) +
            options.queueWeight * queueScoreOf(snapshot) +
            options.kvCacheWeight * kvCacheScore(snapshot),
        )
      })
      const chosen = pickHighest(candidates, (endpoint) => scores.get(endpoint)!, deps.random)!
      if (prefix.hashes.length > 0) producer.record(chosen, prefix.hashes)
      return chosen
    },
  }
}

/**
 * Min-max over the endpoints whose metrics give their queue; the shortest queue scores 1. One
 * whose page leaves the queue out is unscored, as one without metrics is.
 */
function queueScorer(
  snapshots: readonly (EngineSnapshot | undefined)[],
): (snapshot: EngineSnapshot | undefined) => number {
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (const snapshot of snapshots) {
    const waiting = snapshot?.waiting
    if (waiting === undefined) continue
    min = Math.min(min, waiting)
    max = Math.max(max, waiting)
  }
  return (snapshot) => {
    const waiting = snapshot?.waiting
    if (waiting === undefined) return 0
    return max === min ? 1 : (max - waiting) / (max - min)
  }
}

function kvCacheScore(snapshot: EngineSnapshot | undefined): number {
  const kvUsage = snapshot?.kvUsage
  if (kvUsage === undefined) return 0
  return 1 - Math.min(1, Math.max(0, kvUsage))
}

export const llmdPrefixLoadPicker = definePicker({
  name: 'llm-d-prefix-load',
  hashKey: 'ignored',
  usesEngineMetrics: true,
  optionsSchema: llmdPrefixLoadOptionsSchema,
  create: (options, deps) => createLlmdPrefixLoadPicker(options, deps),
})
