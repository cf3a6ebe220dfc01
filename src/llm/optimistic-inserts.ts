import type { PrefixBlockIndex } from './prefix-block-index.ts'

/**
 * A placement's stake in the prefix index's optimistic inserts on one endpoint: the insert it
 * made (its first new block) and those of earlier, unconfirmed placements it matched through.
 */
export interface InsertClaim {
  readonly endpointId: string
  readonly inserts: readonly OptimisticInsert[]
}

interface OptimisticInsert {
  readonly hash: number
  /** Placements that would bring these blocks to the engine: the one that added them, and those that matched through them since. */
  holders: number
}

/**
 * Who still vouches for each optimistic insert. A placement that never reaches its endpoint takes
 * back its insert (its first new block, and with it the chain after it), but blocks a later
 * placement matched through stay while that one may still bring them: otherwise one client that
 * gave up while held would wipe a document another request is prefilling there, and the next
 * question about it would go cold elsewhere.
 */
export interface OptimisticInserts {
  /**
   * Records a placement of `hashes` on the endpoint, whose first `matchedBlocks` the index already
   * held and the rest the caller has just added. Undefined when it neither added nor matched
   * through an insert still tracked.
   */
  claim(
    endpointId: string,
    hashes: readonly number[],
    matchedBlocks: number,
  ): InsertClaim | undefined
  /** The placement never reached its endpoint: blocks no other placement vouches for leave the index. */
  release(claim: InsertClaim): void
  /** Whether a placement of this router's still vouches for the block on the endpoint. */
  vouches(endpointId: string, hash: number): boolean
  /** Forgets every endpoint not in `keep`. */
  retainOnly(keep: ReadonlySet<string>): void
}

export function createOptimisticInserts(
  index: Pick<PrefixBlockIndex, 'remove'>,
  options: {
    /** Inserts tracked per endpoint; the oldest are forgotten (most were sent long ago). */
    readonly maxPerEndpoint: number
  },
): OptimisticInserts {
  const byEndpoint = new Map<string, Map<number, OptimisticInsert>>()
  return {
    claim(endpointId, hashes, matchedBlocks) {
      let tracked = byEndpoint.get(endpointId)
      const inserts: OptimisticInsert[] = []
      if (tracked !== undefined) {
        for (let i = 0; i < matchedBlocks; i++) {
          const insert = tracked.get(hashes[i]!)
          if (insert === undefined) continue
          insert.holders++
          inserts.push(insert)
        }
      }
      if (matchedBlocks < hashes.length) {
        const own: OptimisticInsert = { hash: hashes[matchedBlocks]!, holders: 1 }
        if (tracked === undefined) {
          tracked = new Map()
          byEndpoint.set(endpointId, tracked)
        }
        tracked.delete(own.hash)
        tracked.set(own.hash, own)
        if (tracked.size > options.maxPerEndpoint) {
          const oldest = tracked.keys().next().value
          if (oldest !== undefined) tracked.delete(oldest)
        }
        inserts.push(own)
      }
      return inserts.length === 0 ? undefined : { endpointId, inserts }
    },
    release(claim) {
      const tracked = byEndpoint.get(claim.endpointId)
      for (const insert of claim.inserts) {
        if (--insert.holders > 0) continue
        // Once a later placement added the same block anew (the index had evicted this one), the
        // block is that placement's to vouch for, not this one's to take back.
        const current = tracked?.get(insert.hash)
        if (current !== undefined && current !== insert) continue
        index.remove(claim.endpointId, insert.hash)
        if (current === insert) tracked!.delete(insert.hash)
      }
    },
    vouches(endpointId, hash) {
      return (byEndpoint.get(endpointId)?.get(hash)?.holders ?? 0) > 0
    },
    retainOnly(keep) {
      for (const endpointId of byEndpoint.keys()) {
        if (!keep.has(endpointId)) byEndpoint.delete(endpointId)
      }
    },
  }
}
