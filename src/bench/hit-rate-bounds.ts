import { chainBlocks, kvBlockKeys } from './prefix-chain.ts'
import type { TraceRequest } from './trace-request.ts'

export interface HitRateBoundsOptions {
  /** Words per hash id (Mooncake, 512 × F); undefined for traces without prefix information. */
  readonly blockTokens: number | undefined
  /** The engines' KV block size (vLLM: 16). */
  readonly kvBlockTokens: number
  /** Usable KV blocks summed over the fleet: the size of the one global LRU. */
  readonly capacityBlocks: number
}

export interface HitRateBounds {
  /** Infinite cache, perfect affinity: hits / prompt tokens, in request order. */
  readonly idealPrefixHitRate: number
  /** One global LRU the size of the fleet's KV, same request order. */
  readonly lruBoundPrefixHitRate: number
  readonly promptTokens: number
  /** Prompt KV an infinite cache ends up holding: prompt tokens that are not ideal hits. */
  readonly cacheDemandTokens: number
}

/**
 * Both bounds count hits as vLLM does: whole KV blocks, at most `promptTokens − 1` tokens, so
 * they are directly comparable with the engines' `prefix_cache_hits / prefix_cache_queries`.
 * Neither models concurrency (a prefix still being prefilled is not yet cached) or the blocks that
 * running requests pin; the LRU holds generated blocks too, and frees a request's blocks tail first
 * as vLLM does.
 */
export function computeHitRateBounds(
  requests: readonly TraceRequest[],
  options: HitRateBoundsOptions,
): HitRateBounds {
  const size = options.kvBlockTokens
  const coverage = new Map<number, number>()
  const lru = new Map<number, true>()
  let unique = 0
  const nextUnique = (): number => --unique
  let promptTokens = 0
  let idealHits = 0
  let lruHits = 0

  for (const request of requests) {
    const n = request.inputTokens
    const maxHitBlocks = Math.floor((n - 1) / size)
    promptTokens += n

    // Ideal: the longest prefix shared with any earlier request, from per-block word coverage.
    const { keys, words } = chainBlocks(request, options.blockTokens)
    let hitWords = 0
    for (let j = 0; j < keys.length; j++) {
      const seen = coverage.get(keys[j]!)
      if (seen === undefined) break
      const common = Math.min(seen, words[j]!)
      hitWords += common
      if (common < options.blockTokens!) break
    }
    idealHits += Math.min(Math.floor((1 + hitWords) / size), maxHitBlocks) * size
    for (let j = 0; j < keys.length; j++) {
      coverage.set(keys[j]!, Math.max(coverage.get(keys[j]!) ?? 0, words[j]!))
    }

    // LRU bound: leading blocks still resident.
    const blocks = kvBlockKeys(request, options.blockTokens, size, nextUnique)
    let hit = 0
    while (hit < Math.min(blocks.length, maxHitBlocks) && lru.has(blocks[hit]!)) hit++
    lruHits += hit * size
    const generatedBlocks = Math.ceil((n + request.outputTokens) / size) - Math.floor(n / size)
    for (let g = 0; g < generatedBlocks; g++) lru.set(nextUnique(), true)
    for (let p = blocks.length - 1; p >= 0; p--) {
      lru.delete(blocks[p]!)
      lru.set(blocks[p]!, true)
    }
    if (lru.size > options.capacityBlocks) {
      let excess = lru.size - options.capacityBlocks
      for (const key of lru.keys()) {
        if (excess-- <= 0) break
        lru.delete(key)
      }
    }
  }
  return {
    idealPrefixHitRate: promptTokens === 0 ? 0 : idealHits / promptTokens,
    lruBoundPrefixHitRate: promptTokens === 0 ? 0 : lruHits / promptTokens,
    promptTokens,
    cacheDemandTokens: promptTokens - idealHits,
  }
}
