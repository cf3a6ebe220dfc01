import type { Clock } from '../util/clock.ts'

/**
 * How many prompt tokens each endpoint's prefix cache has taken in lately, with older growth
 * counting half every `halfLifeMs`. New blocks evict an LRU's tail; on a cache that grows fast
 * that tail is young and likely to be asked for again, so a policy sends cold growth where this
 * is lowest (relative to capacity). Memory is one record per endpoint; `retainOnly` forgets
 * departed ones.
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
  const growth = new Map<string, { tokens: number; atMs: number }>()
  const decayed = (endpointId: string): { tokens: number; atMs: number } | undefined => {
    const grown = growth.get(endpointId)
    if (grown === undefined) return undefined
    const nowMs = deps.clock.now()
    if (nowMs > grown.atMs) {
      grown.tokens *= 0.5 ** ((nowMs - grown.atMs) / options.halfLifeMs)
      grown.atMs = nowMs
    }
    return grown
  }
  return {
    grow(endpointId, tokens) {
      const grown = decayed(endpointId)
      if (grown === undefined) growth.set(endpointId, { tokens, atMs: deps.clock.now() })
      else grown.tokens += tokens
    },
    tokens: (endpointId) => decayed(endpointId)?.tokens ?? 0,
    retainOnly(keep) {
      for (const id of growth.keys()) if (!keep.has(id)) growth.delete(id)
    },
  }
}
