/**
 * A map of at most `maxEntries` keys in two least-recently-used segments (SLRU): a new key is kept
 * on probation, and its `promoteAfterUses`-th use protects it. A full probation segment evicts its
 * oldest key; a full protected one demotes its oldest to probation. So a flood of keys used once
 * (model names a client makes up, say) churns probation and never evicts a key in steady use.
 */
export interface SegmentedLruMap<V> {
  /** Keys held, in both segments. */
  readonly size: number
  /** The key's value, without counting a use or refreshing it. */
  peek(key: string): V | undefined
  /** The key's value, made by `create` when absent; counts a use and makes it the most recent. */
  use(key: string, create: () => V): V
  values(): IterableIterator<V>
}

export interface SegmentedLruMapOptions {
  /** Keys kept in both segments together; at least 2. */
  readonly maxEntries: number
  /** Of those, the most on probation. Default a quarter, at least 1. */
  readonly probationEntries?: number
  /** Uses (the first included) that protect a key. Default 2. */
  readonly promoteAfterUses?: number
}

interface OnProbation<V> {
  readonly value: V
  uses: number
}

export function createSegmentedLruMap<V>(options: SegmentedLruMapOptions): SegmentedLruMap<V> {
  const maxEntries = Math.max(2, Math.floor(options.maxEntries))
  const probationMax = Math.min(
    maxEntries - 1,
    Math.max(1, Math.floor(options.probationEntries ?? maxEntries / 4)),
  )
  const protectedMax = maxEntries - probationMax
  const promoteAfter = Math.max(1, Math.floor(options.promoteAfterUses ?? 2))
  // Insertion order is recency in both: a use moves the key to the end, eviction takes the first.
  const probation = new Map<string, OnProbation<V>>()
  const kept = new Map<string, V>()
  // The most recent protected key: using it again changes nothing (the common case, one model).
  let newest: string | undefined

  const putOnProbation = (key: string, entry: OnProbation<V>): void => {
    if (probation.size >= probationMax) probation.delete(probation.keys().next().value!)
    probation.set(key, entry)
  }
  const protect = (key: string, value: V): void => {
    if (kept.size >= protectedMax) {
      const [oldKey, oldValue] = kept.entries().next().value!
      kept.delete(oldKey)
      // One more use protects it again; until then new keys may evict it.
      putOnProbation(oldKey, { value: oldValue, uses: promoteAfter - 1 })
    }
    kept.set(key, value)
    newest = key
  }

  return {
    get size() {
      return kept.size + probation.size
    },
    peek: (key) => kept.get(key) ?? probation.get(key)?.value,
    use(key, create) {
      if (key === newest) return kept.get(key) as V
      if (kept.has(key)) {
        const value = kept.get(key) as V
        kept.delete(key)
        kept.set(key, value)
        newest = key
        return value
      }
      const entry = probation.get(key)
      if (entry !== undefined) {
        probation.delete(key)
        if (++entry.uses >= promoteAfter) protect(key, entry.value)
        else probation.set(key, entry)
        return entry.value
      }
      const value = create()
      if (promoteAfter <= 1) protect(key, value)
      else putOnProbation(key, { value, uses: 1 })
      return value
    },
    *values() {
      yield* kept.values()
      for (const entry of probation.values()) yield entry.value
    },
  }
}
