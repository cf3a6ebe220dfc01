/**
 * The prompt blocks the requests in flight on one endpoint hold in its KV cache, counted by
 * reference: an engine with prefix caching keeps one copy of a block however many running
 * requests share it, so a request whose prefix is already pinned there adds only the rest.
 */
export interface PinnedBlocks {
  pin(hashes: readonly number[]): void
  unpin(hashes: readonly number[]): void
  /** How many leading blocks of `hashes` some request in flight holds: stops at the first it lacks. */
  leading(hashes: readonly number[]): number
  /** Distinct blocks pinned now. */
  readonly size: number
}

export function createPinnedBlocks(): PinnedBlocks {
  const counts = new Map<number, number>()
  return {
    pin(hashes) {
      for (const hash of hashes) counts.set(hash, (counts.get(hash) ?? 0) + 1)
    },
    unpin(hashes) {
      for (const hash of hashes) {
        const count = counts.get(hash)
        if (count === undefined) continue
        if (count <= 1) counts.delete(hash)
        else counts.set(hash, count - 1)
      }
    },
    leading(hashes) {
      let held = 0
      while (held < hashes.length && counts.has(hashes[held]!)) held++
      return held
    },
    get size() {
      return counts.size
    },
  }
}
