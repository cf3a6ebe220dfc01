/**
 * Where each conversation's last turn was placed: the policy's memory of sessions (the route's `sessionHeader`, default `x-session-id`): a bounded
 * map with least-recently-used eviction. A Map keeps insertion order, so refreshing a key is
 * delete-then-set and the oldest key is always first. Keys are 53-bit hashes of the session's
 * scope and id, so what a client puts in the header cannot set the table's memory.
 */
export interface SessionTable {
  readonly size: number
  /** The endpoint the session's last turn went to. */
  get(key: number): string | undefined
  record(key: number, endpointId: string): void
}

export function createSessionTable(options: { readonly maxSessions: number }): SessionTable {
  const max = Math.max(1, Math.floor(options.maxSessions))
  const placements = new Map<number, string>()
  return {
    get size() {
      return placements.size
    },
    get: (key) => placements.get(key),
    record(key, endpointId) {
      placements.delete(key)
      placements.set(key, endpointId)
      if (placements.size > max) {
        const oldest = placements.keys().next().value
        if (oldest !== undefined) placements.delete(oldest)
      }
    },
  }
}
