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

interface Pin {
  holders: number
  /** What the block was charged when first pinned. */
  readonly tokens: number
}

export function createPinnedBlocks(): PinnedBlocks {
  const pins = new Map<number, Pin>()
  return {
    pin(hashes, tokensPerBlock) {
      let added = 0
      for (const hash of hashes) {
        const pin = pins.get(hash)
        if (pin) pin.holders++
        else {
          pins.set(hash, { holders: 1, tokens: tokensPerBlock })
          added += tokensPerBlock
        }
      }
      return added
    },
    unpin(hashes) {
      let released = 0
      for (const hash of hashes) {
        const pin = pins.get(hash)
        if (pin === undefined) continue
        if (--pin.holders > 0) continue
        pins.delete(hash)
        released += pin.tokens
      }
      return released
    },
    leading(hashes, limit = hashes.length) {
      const end = Math.min(limit, hashes.length)
      let held = 0
      while (held < end && pins.has(hashes[held]!)) held++
      return held
    },
  }
}
