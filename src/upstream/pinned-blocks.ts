import { createNumberTable } from '../util/number-table.ts'

/**
 * The prompt blocks the requests in flight on one endpoint hold in its KV cache, counted by
 * reference: an engine with prefix caching keeps one copy of a block however many running
 * requests share it. A block's tokens are charged once, when its first holder pins it, and
 * released when its last holder ends, whichever request that is.
 */
export interface PinnedBlocks {
  /** Pins the blocks; returns the tokens of those no one held before (`tokensPerBlock` each). */
  pin(hashes: readonly number[], tokensPerBlock: number): number
  /** Unpins the blocks; returns the tokens of those no one holds any more. */
  unpin(hashes: readonly number[]): number
  /**
   * How many leading blocks of `hashes` some request in flight holds: stops at the first it lacks,
   * or at `limit`.
   */
  leading(hashes: readonly number[], limit?: number): number
}

const ABSENT = -1

export function createPinnedBlocks(): PinnedBlocks {
  // Each pinned block is a record: its holders and the tokens it was charged when first pinned,
  // in typed arrays reused through a free list. The table maps a block hash to its record: a Map
  // keyed by hashes allocates a box a lookup and, under pin-and-unpin churn, rehashes often.
  const recordOf = createNumberTable()
  let holders = new Int32Array(64)
  let tokens = new Float64Array(64)
  const free: number[] = []
  let used = 0
  const newRecord = (charged: number): number => {
    let record = free.pop()
    if (record === undefined) {
      if (used === holders.length) {
        const grownHolders = new Int32Array(used * 2)
        grownHolders.set(holders)
        holders = grownHolders
        const grownTokens = new Float64Array(used * 2)
        grownTokens.set(tokens)
        tokens = grownTokens
      }
      record = used++
    }
    holders[record] = 1
    tokens[record] = charged
    return record
  }
  return {
    pin(hashes, tokensPerBlock) {
      let added = 0
      for (let i = 0; i < hashes.length; i++) {
        const hash = hashes[i]!
        const record = recordOf.get(hash)
        if (record !== ABSENT) holders[record]!++
        else {
          recordOf.set(hash, newRecord(tokensPerBlock))
          added += tokensPerBlock
        }
      }
      return added
    },
    unpin(hashes) {
      let released = 0
      for (let i = 0; i < hashes.length; i++) {
        const hash = hashes[i]!
        const record = recordOf.get(hash)
        if (record === ABSENT) continue
        if (--holders[record]! > 0) continue
        recordOf.delete(hash)
        free.push(record)
        released += tokens[record]!
      }
      return released
    },
    leading(hashes, limit = hashes.length) {
      const end = Math.min(limit, hashes.length)
      let held = 0
      while (held < end && recordOf.get(hashes[held]!) !== ABSENT) held++
      return held
    },
  }
}
