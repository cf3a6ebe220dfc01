import { createSegmentedLruMap, type SegmentedLruMap } from '../../util/segmented-lru-map.ts'

/** Models a prefix picker keeps state for (index, trie or tree): protected ones plus probation. */
const MAX_MODELS_PER_PICKER = 64

/**
 * A prefix picker's per-model state, keyed by the served model. With a wildcard model each name a
 * client makes up is a model, so the map is bounded, and a model is protected from a flood of
 * one-off names once a second request has used it (see `createSegmentedLruMap`).
 */
export function createPerModelState<V>(): SegmentedLruMap<V> {
  return createSegmentedLruMap<V>({
    maxEntries: MAX_MODELS_PER_PICKER,
    probationEntries: 16,
    promoteAfterUses: 2,
  })
}
