import type { Endpoint } from '../upstream/endpoint.ts'
import type { Clock } from '../util/clock.ts'
import { type EngineMetricsSource, kvCapacityTokensOf } from './engine-snapshot.ts'
import type { LlmRequest } from './llm-request.ts'
import { createPrefixBlockIndex, hashPromptBlocks } from './prefix-block-index.ts'
import { DEFAULT_CHARS_PER_TOKEN } from './token-estimate.ts'

export interface ApproxPrefixOptions {
  /** Characters per block: 16 tokens × 4 characters (GIE's legacy character blocks). */
  readonly blockSizeChars: number
  /** Only the first this many blocks of a prompt count. */
  readonly maxPrefixBlocks: number
  /** Blocks remembered per endpoint when its engine does not publish `num_gpu_blocks`. */
  readonly lruCapacityPerServer: number
  /** Size each endpoint's LRU from its engine's KV capacity (`num_gpu_blocks` × `block_size`). */
  readonly autoTune: boolean
}

export interface PrefixMatch {
  /** The prompt's block hashes; empty when there is no prompt or it is shorter than a block. */
  readonly hashes: readonly number[]
  /** Leading blocks the endpoint holds / the prompt's blocks: the prefix-cache score, 0 to 1. */
  scoreOf(endpoint: Endpoint): number
}

/**
 * llm-d / GIE's `approx-prefix-cache-producer` (research note §1.4): hashes the prompt into chained
 * character blocks scoped by model, scores each endpoint by the leading blocks it is believed to
 * hold, and after the pick records the blocks for the chosen endpoint, optimistically, before the
 * engine has them. Endpoints that left the pool are purged every `purgeIntervalMs` (2 min).
 */
export interface ApproxPrefixProducer {
  match(llm: LlmRequest | undefined, candidates: readonly Endpoint[]): PrefixMatch
  record(endpoint: Endpoint, hashes: readonly number[]): void
  /** Drops endpoints missing from `eligible`, at most once per purge interval. */
  purgeDeparted(eligible: readonly Endpoint[]): void
}

export interface ApproxPrefixDeps {
  readonly clock: Clock
  readonly engineMetrics?: EngineMetricsSource | undefined
}

const PURGE_INTERVAL_MS = 120_000
const NO_MATCH: PrefixMatch = Object.freeze({ hashes: Object.freeze([]), scoreOf: () => 0 })

export function createApproxPrefixProducer(
  options: ApproxPrefixOptions,
  deps: ApproxPrefixDeps,
): ApproxPrefixProducer {
  const index = createPrefixBlockIndex({ defaultCapacityBlocks: options.lruCapacityPerServer })
  let lastPurgeAtMs = deps.clock.now()

  // GIE sizes the LRU in the engine's own blocks (its block size auto-tunes to them); these blocks
  // stay at blockSizeChars for every endpoint, so the engine's pool is counted in them instead:
  // vLLM's 16-token blocks map one to one, SGLang's 1-token pages sixteen to one.
  // GIE's legacy character blocks assume 4 characters per token.
  const tokensPerBlock = options.blockSizeChars / DEFAULT_CHARS_PER_TOKEN
  const capacityOf = (endpoint: Endpoint): number | undefined => {
    if (!options.autoTune) return undefined
    const layout = deps.engineMetrics?.kvLayout(endpoint.id)
    if (layout === undefined) return undefined
    return Math.max(1, Math.round(kvCapacityTokensOf(layout) / tokensPerBlock))
  }

  return {
    match(llm, candidates) {
      if (llm === undefined) return NO_MATCH
      // Scoped by the served model: an alias and its canonical name share the engine's cache.
      const hashes = hashPromptBlocks(
        llm.promptText,
        llm.servedModel,
        options.blockSizeChars,
        options.maxPrefixBlocks,
      )
      if (hashes.length === 0) return NO_MATCH
      const scores = new Map<string, number>()
      for (const endpoint of candidates) {
        scores.set(endpoint.id, index.matchedBlocks(endpoint.id, hashes) / hashes.length)
      }
      return { hashes, scoreOf: (endpoint) => scores.get(endpoint.id) ?? 0 }
    },
    record(endpoint, hashes) {
      index.add(endpoint.id, hashes, capacityOf(endpoint))
    },
    purgeDeparted(eligible) {
      const nowMs = deps.clock.now()
      if (nowMs - lastPurgeAtMs < PURGE_INTERVAL_MS) return
      lastPurgeAtMs = nowMs
      index.retainOnly(new Set(eligible.map((endpoint) => endpoint.id)))
    },
  }
}
