import type { Clock } from '../util/clock.ts'
import { createDecayedSum, type DecayedSum } from '../util/decayed-sum.ts'

/**
 * How many prompt tokens each endpoint's prefix cache has taken in lately, with older growth
 * counting half every `halfLifeMs`. New blocks evict an LRU's tail; on a cache that grows fast
 * that tail is young and likely to be asked for again, so a policy sends cold growth where this
 * is lowest (relative to capacity). Memory is one sum per endpoint; `retainOnly` forgets departed
 * ones.
 */
export interface CacheGrowth {
  grow(endpointId: string, tokens: number): void
  /** Decayed tokens taken in by the endpoint's cache; 0 for one never seen. */
  tokens(endpointId: string): number
  retainOnly(keep: ReadonlySet<string>): void
}

export function createCacheGrowth(
  options: { readonly halfLifeMs: number },
  deps: { readonly clock: Clock },
): CacheGrowth {
  const growth = new Map<string, DecayedSum>()
  return {
    grow(endpointId, tokens) {
      let sum = growth.get(endpointId)
      if (sum === undefined) {
        sum = createDecayedSum(options, deps)
        growth.set(endpointId, sum)
      }
      sum.add(tokens)
    },
    tokens: (endpointId) => growth.get(endpointId)?.value() ?? 0,
    retainOnly(keep) {
      for (const id of growth.keys()) if (!keep.has(id)) growth.delete(id)
    },
  }
}
