/** Where a conversation's last turn was placed, and how much of its context that engine holds. */
export interface SessionPlacement {
  readonly endpointId: string
  /** Prompt tokens of the last turn placed there: the engine computed (and caches) them. */
  readonly contextTokens: number
}

/**
 * The policy's memory of sessions (the route's `sessionHeader`, default `x-session-id`): a bounded
 * map with least-recently-used eviction. A Map keeps insertion order, so refreshing a key is
 * delete-then-set and the oldest key is always first. Keys are 53-bit hashes of the session's
 * scope and id, so what a client puts in the header cannot set the table's memory.
 */
export interface SessionTable {
  readonly size: number
  get(key: number): SessionPlacement | undefined
  record(key: number, placement: SessionPlacement): void
}

export function createSessionTable(options: { readonly maxSessions: number }): SessionTable {
  const max = Math.max(1, Math.floor(options.maxSessions))
  const placements = new Map<number, SessionPlacement>()
  return {
    get size() {
      return placements.size
    },
    get: (key) => placements.get(key),
    record(key, placement) {
      placements.delete(key)
      placements.set(key, placement)
      if (placements.size > max) {
        const oldest = placements.keys().next().value
        if (oldest !== undefined) placements.delete(oldest)
      }
    },
  }
}
