import { hashBlockChain } from '../util/block-chain-hash.ts'
import { createNumberTable } from '../util/number-table.ts'
import { hashText53 } from '../util/text-hash.ts'
import { createLruNumberSet, type LruNumberSet } from './lru-number-set.ts'

/**
 * GIE's approximate prefix hashing (research note §1.4): the prompt text, not tokens, is cut into
 * `blockChars` characters (16 tokens × 4 chars = 64 by default) and each block's hash chains the
 * previous one, so a block hash stands for the whole prefix up to it. The chain is seeded with
 * `scope` (the model), which keeps one model's blocks from matching another's. A trailing partial
 * block is hashed too; a prompt shorter than one block gives no blocks; only the first `maxBlocks`
 * count.
 */
export function hashPromptBlocks(
  text: string,
  scope: string,
  blockChars: number,
  maxBlocks: number,
): number[] {
  if (text.length < blockChars) return []
  return hashBlockChain(text, hashText53(scope), blockChars, maxBlocks)
}

/**
 * Which prefix blocks each endpoint is believed to hold: one LRU of block hashes per endpoint,
 * written optimistically when a request is dispatched there (before the KV exists), as GIE's
 * `approx-prefix-cache-producer` does. Each endpoint's LRU is capped, so memory is bounded by
 * endpoints × capacity × one number.
 */
/**
 * Most blocks one endpoint's index holds, whatever KV size it reports: 2^21 blocks of 64
 * characters is about 33M tokens, many times the largest engine's KV, and some 100 MB at most.
 */
export const MAX_INDEX_BLOCKS = 2 ** 21

export interface PrefixBlockIndex {
  /** How many leading blocks of `hashes` the endpoint holds: stops at the first one it lacks. */
  matchedBlocks(endpointId: string, hashes: readonly number[]): number
  /**
   * `matchedBlocks` for each of `endpointIds`, into `out` (by position), in one walk of the
   * prompt: a block every endpoint holds (a shared system prompt) is looked up once, not once an
   * endpoint, which on a large fleet was most of a placement's cost.
   */
  matchedBlocksEach(endpointIds: readonly string[], hashes: readonly number[], out: number[]): void
  /**
   * Records the blocks as held by the endpoint and makes them its most recent. `capacityBlocks`
   * sizes the endpoint's LRU when it is first seen (GIE sizes it from `num_gpu_blocks`); see
   * `resizeOnCapacityChange`.
   */
  add(endpointId: string, hashes: readonly number[], capacityBlocks?: number): void
  /**
   * Forgets one block of the endpoint's (and so, for matching, every block chained after it): an
   * optimistic insert whose attempt failed. A later `add` of the prompt puts it back.
   */
  remove(endpointId: string, hash: number): void
  /** Forgets every endpoint not in `keep` (GIE purges departed pods every 2 minutes). */
  retainOnly(keep: ReadonlySet<string>): void
  /** Blocks currently held for the endpoint. */
  size(endpointId: string): number
  /**
   * Changes whenever the endpoint's blocks may have changed (an add, which may evict, or a
   * purge), so a caller may keep a prompt's `matchedBlocks` for as long as it stays the same.
   */
  version(endpointId: string): number
}

export interface PrefixBlockIndexOptions {
  /** LRU capacity for an endpoint whose capacity is not given (`lruCapacityPerServer`). */
  readonly defaultCapacityBlocks: number
  /**
   * Refresh a prompt's blocks tail first, so its root is the most recent and is evicted last, as
   * vLLM frees a sequence's blocks tail first (a match needs the chain from the root). GIE's producer
   * refreshes in prompt order, the default here, so the llm-d baselines stay faithful.
   */
  readonly evictTailFirst?: boolean
  /**
   * Resize an endpoint's LRU when `add` brings a capacity more than a quarter away from its own
   * (the engine's real KV size arrived after its first request, say). GIE sizes it once, when the
   * endpoint is first seen, which is the default, so the llm-d baselines stay faithful.
   */
  readonly resizeOnCapacityChange?: boolean
}

/** A capacity this far (as a share) from the current one resizes an endpoint's LRU. */
const RESIZE_SHARE = 0.25

export function createPrefixBlockIndex(options: PrefixBlockIndexOptions): PrefixBlockIndex {
  const byEndpoint = new Map<string, LruNumberSet>()
  const versions = new Map<string, number>()
  // How many endpoints' LRUs hold each block: a block all of them hold needs no walk of each.
  const holders = createNumberTable()
  const held = (hash: number): void => {
    holders.add(hash, 1)
  }
  const released = (hash: number): void => {
    holders.add(hash, -1)
  }
  // Reused by `matchedBlocksEach`: the positions still matching, and their LRUs.
  const alive: number[] = []
  const lrus: LruNumberSet[] = []
  let changes = 0
  return {
    matchedBlocks(endpointId, hashes) {
      const lru = byEndpoint.get(endpointId)
      if (lru === undefined) return 0
      let matched = 0
      while (matched < hashes.length && lru.has(hashes[matched]!)) matched++
      return matched
    },
    matchedBlocksEach(endpointIds, hashes, out) {
      alive.length = 0
      for (let k = 0; k < endpointIds.length; k++) {
        const lru = byEndpoint.get(endpointIds[k]!)
        out[k] = 0
        if (lru === undefined) continue
        lrus[k] = lru
        alive.push(k)
      }
      const everyone = byEndpoint.size
      let i = 0
      for (; i < hashes.length && alive.length > 0; i++) {
        const hash = hashes[i]!
        const count = holders.get(hash)
        if (count === everyone) continue
        if (count === -1) break
        let kept = 0
        for (let r = 0; r < alive.length; r++) {
          const k = alive[r]!
          if (lrus[k]!.has(hash)) alive[kept++] = k
          else out[k] = i
        }
        alive.length = kept
      }
      for (const k of alive) out[k] = i
      lrus.length = 0
    },
    add(endpointId, hashes, requestedBlocks) {
      if (hashes.length === 0) return
      // Sized from what the engine reports, but never past a hard bound: a bogus KV size must not
      // grow the router's memory with it, whichever policy sized it.
      const capacityBlocks =
        requestedBlocks === undefined ? undefined : Math.min(MAX_INDEX_BLOCKS, requestedBlocks)
      versions.set(endpointId, ++changes)
      let lru = byEndpoint.get(endpointId)
      if (lru === undefined) {
        lru = createLruNumberSet(capacityBlocks ?? options.defaultCapacityBlocks, released)
        byEndpoint.set(endpointId, lru)
      } else if (
        options.resizeOnCapacityChange &&
        capacityBlocks !== undefined &&
        Math.abs(capacityBlocks - lru.capacity) > RESIZE_SHARE * lru.capacity
      ) {
        // The engine's real KV size arrived after its first request (or changed), or the prompts'
        // characters per token moved a lot: a few percent of request-to-request noise is ignored.
        lru.resize(capacityBlocks)
      }
      if (options.evictTailFirst) {
        for (let i = hashes.length - 1; i >= 0; i--) if (lru.touch(hashes[i]!)) held(hashes[i]!)
      } else {
        for (const hash of hashes) if (lru.touch(hash)) held(hash)
      }
    },
    remove(endpointId, hash) {
      if (!byEndpoint.get(endpointId)?.delete(hash)) return
      released(hash)
      versions.set(endpointId, ++changes)
    },
    retainOnly(keep) {
      for (const [endpointId, lru] of byEndpoint) {
        if (keep.has(endpointId)) continue
        lru.forEach(released)
        byEndpoint.delete(endpointId)
        versions.delete(endpointId)
      }
    },
    size: (endpointId) => byEndpoint.get(endpointId)?.size ?? 0,
    version: (endpointId) => versions.get(endpointId) ?? 0,
  }
}
