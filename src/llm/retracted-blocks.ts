/**
 * Prefix blocks hidden from an endpoint's matches: the first block that a failed attempt's
 * optimistic insert added there. The prefix index cannot delete, and the rest of that chain is
 * reachable only through its first block, so hiding it keeps a retried conversation from being
 * drawn back to the endpoint that never got the prompt, until a pick places it there again.
 * `version` moves on every change, so matches memoised before it can be retaken.
 */
export interface RetractedBlocks {
  retract(endpointId: string, hash: number): void
  /** The prompt was placed on the endpoint again: its blocks there are real once more. */
  restore(endpointId: string, hashes: readonly number[]): void
  /** How many leading blocks of a match of `matched` stay once hidden ones cut it short. */
  visible(endpointId: string, hashes: readonly number[], matched: number): number
  readonly version: number
  readonly isEmpty: boolean
  retainOnly(keep: ReadonlySet<string>): void
}

export function createRetractedBlocks(options: {
  /** Beyond this many per endpoint the oldest are forgotten. */
  readonly maxPerEndpoint: number
}): RetractedBlocks {
  const hidden = new Map<string, Set<number>>()
  let version = 0
  return {
    retract(endpointId, hash) {
      let set = hidden.get(endpointId)
      if (set === undefined) {
        set = new Set()
        hidden.set(endpointId, set)
      }
      set.add(hash)
      if (set.size > options.maxPerEndpoint) set.delete(set.values().next().value!)
      version++
    },
    restore(endpointId, hashes) {
      const set = hidden.get(endpointId)
      if (set === undefined) return
      let changed = false
      for (const hash of hashes) changed = set.delete(hash) || changed
      if (set.size === 0) hidden.delete(endpointId)
      if (changed) version++
    },
    visible(endpointId, hashes, matched) {
      const set = hidden.get(endpointId)
      if (set === undefined) return matched
      for (let i = 0; i < matched; i++) if (set.has(hashes[i]!)) return i
      return matched
    },
    get version() {
      return version
    },
    get isEmpty() {
      return hidden.size === 0
    },
    retainOnly(keep) {
      for (const id of hidden.keys()) if (!keep.has(id)) hidden.delete(id)
    },
  }
}
