import { z } from 'zod'
import { type ApproxRadixTree, createApproxRadixTree } from '../../llm/approx-radix-tree.ts'
import { pickLowest } from '../../llm/pick-best.ts'
import type { Endpoint } from '../../upstream/endpoint.ts'
import { isExcluded, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createPerModelState } from './per-model-state.ts'

export const sglangCacheAwareOptionsSchema = z
  .object({
    /** Route to the best-matching worker only when matched / request characters exceeds this. */
    cacheThreshold: z.number().min(0).max(1).default(0.3),
    /** Imbalanced needs max − min in-flight above this... */
    balanceAbsThreshold: z.int().min(0).default(64),
    /** ...and max above this multiple of min. */
    balanceRelThreshold: z.number().min(0).default(1.5),
    /** How often the LRU eviction pass runs over the trees (SGLang's `eviction_interval`). */
    evictionIntervalMs: z.int().min(0).default(120_000),
    /** SGLang's `max_tree_size`: characters per worker kept in the tree (2^26). */
    maxTreeChars: z
      .int()
      .min(1)
      .default(2 ** 26),
  })
  .strict()

export type SglangCacheAwareOptions = z.output<typeof sglangCacheAwareOptionsSchema>

/**
 * SGLang router / Model Gateway `cache_aware` (research note §2), over router-side in-flight
 * requests per endpoint as SGLang's "load":
 * 1. Imbalanced (max − min > `balanceAbsThreshold` and max > `balanceRelThreshold` × min): the
 *    least-loaded endpoint, whatever is cached.
 * 2. Otherwise match the prompt text against this model's approximate radix tree; if the matched
 *    share of characters exceeds `cacheThreshold`, the endpoint holding that prefix (the most
 *    recently used one if several do), else the least-loaded (SMG's fix for the "death spiral" of
 *    v1's smallest-tree fallback).
 * The chosen endpoint is written into the tree either way, at pick time. Least-load ties are
 * broken at random. A request without `ctx.llm` has no text, so it always goes least-loaded.
 */
export function createSglangCacheAwarePicker(
  options: SglangCacheAwareOptions,
  deps: PickerDeps,
): Picker {
  const trees = createPerModelState<ApproxRadixTree>()
  let lastEvictionAtMs = deps.clock.now()
  const newTree = (): ApproxRadixTree =>
    createApproxRadixTree({ maxCharsPerTenant: options.maxTreeChars })

  // SGLang runs eviction on a background thread; pickers own no timers, so the first pick after
  // the interval runs the pass (the tree also evicts on its own past twice the limit).
  const maybeEvict = (): void => {
    const nowMs = deps.clock.now()
    if (nowMs - lastEvictionAtMs < options.evictionIntervalMs) return
    lastEvictionAtMs = nowMs
    for (const tree of trees.values()) tree.evict()
  }

  return {
    name: 'sglang-cache-aware',
    pick(eligible, ctx) {
      const candidates = eligible.filter((endpoint) => !isExcluded(endpoint, ctx))
      if (candidates.length === 0) return undefined
      maybeEvict()
      const text = ctx.llm?.promptText ?? ''
      // Scoped by the served model: an alias and its canonical name share the engine's cache.
      const tree =
        ctx.llm !== undefined && text.length > 0
          ? trees.use(ctx.llm.servedModel, newTree)
          : undefined

      let chosen: Endpoint | undefined
      if (tree !== undefined && !isImbalanced(candidates, options)) {
        const ids = new Set(candidates.map((endpoint) => endpoint.id))
        const match = tree.match(text, (tenant) => ids.has(tenant))
        if (match.matchedChars / text.length > options.cacheThreshold) {
          const owner = match.tenants[0]
          chosen = candidates.find((endpoint) => endpoint.id === owner)
        }
      }
      chosen ??= pickLowest(candidates, (endpoint) => endpoint.inflight, deps.random)!
      tree?.insert(text, chosen.id)
      return chosen
    },
    // A departed worker's paths go, as SGLang removes a worker's tenant, and so do those of an id
    // that now names another server: its new engine holds none of them.
    retain(ids, forget) {
      const keep = new Set([...ids].filter((id) => forget?.has(id) !== true))
      for (const tree of trees.values()) tree.retainOnly(keep)
    },
  }
}

function isImbalanced(candidates: readonly Endpoint[], options: SglangCacheAwareOptions): boolean {
  let min = Number.POSITIVE_INFINITY
  let max = 0
  for (const endpoint of candidates) {
    min = Math.min(min, endpoint.inflight)
    max = Math.max(max, endpoint.inflight)
  }
  return max - min > options.balanceAbsThreshold && max > options.balanceRelThreshold * min
}

export const sglangCacheAwarePicker = definePicker({
  name: 'sglang-cache-aware',
  hashKey: 'ignored',
  optionsSchema: sglangCacheAwareOptionsSchema,
  create: (options, deps) => createSglangCacheAwarePicker(options, deps),
})
