import { z } from 'zod'
import { createPrefixHashTrie, type PrefixHashTrie } from '../../llm/prefix-hash-trie.ts'
import { createRequestRateWindow, type RequestRateWindow } from '../../llm/request-rate-window.ts'
import type { Endpoint } from '../../upstream/endpoint.ts'
import { randomInt } from '../../util/random.ts'
import { isExcluded, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createPerModelState } from './per-model-state.ts'

export const vllmPrefixAwareOptionsSchema = z
  .object({
    /** The trie's chunk size in characters. */
    chunkSizeChars: z.int().min(1).max(65_536).default(128),
    /** `--prefix-min-match-length`: a shorter match goes to the lowest-QPS endpoint instead. */
    prefixMinMatchChars: z.int().min(0).default(0),
    /** `--request-stats-window`: the window router-side QPS is measured over. */
    requestStatsWindowMs: z.int().min(1_000).default(60_000),
    /** Bound on trie nodes (the original has none); each node stands for one chunk of prefix. */
    maxTrieNodes: z.int().min(1).default(262_144),
  })
  .strict()

export type VllmPrefixAwareOptions = z.output<typeof vllmPrefixAwareOptionsSchema>

/**
 * vLLM production-stack's `prefixaware` routing logic (research note §3): the longest match of
 * the prompt's 128-character chunks in a trie of past routing decisions, then a uniformly random
 * endpoint among those holding that longest match (all endpoints when nothing matches). A match
 * shorter than `prefixMinMatchChars` (default 0, so never) goes to the endpoint with the lowest
 * router-side QPS instead; the prompt is inserted for the chosen endpoint either way. No load term.
 * A request without `ctx.llm` takes the lowest-QPS endpoint, as the original's session router does
 * for a request without a key. Lowest-QPS ties go to the first endpoint, as in the original.
 */
export function createVllmPrefixAwarePicker(
  options: VllmPrefixAwareOptions,
  deps: PickerDeps,
): Picker {
  const tries = createPerModelState<PrefixHashTrie>()
  const rates = createRequestRateWindow({ windowMs: options.requestStatsWindowMs }, deps)
  const newTrie = (): PrefixHashTrie =>
    createPrefixHashTrie({ chunkChars: options.chunkSizeChars, maxNodes: options.maxTrieNodes })

  return {
    name: 'vllm-prefix-aware',
    pick(eligible, ctx) {
      const candidates = eligible.filter((endpoint) => !isExcluded(endpoint, ctx))
      if (candidates.length === 0) return undefined
      const llm = ctx.llm
      let chosen: Endpoint
      if (llm === undefined) {
        chosen = lowestQps(candidates, rates)
      } else {
        // Scoped by the served model: an alias and its canonical name share the engine's cache.
        const trie = tries.use(llm.servedModel, newTrie)
        const available = new Set(candidates.map((endpoint) => endpoint.id))
        const match = trie.longestPrefixMatch(llm.promptText, available)
        if (match.matchedChars < options.prefixMinMatchChars) {
          chosen = lowestQps(candidates, rates)
        } else {
          const holders = candidates.filter((endpoint) => match.endpoints.has(endpoint.id))
          chosen = holders[randomInt(deps.random, holders.length)]!
        }
        trie.insert(llm.promptText, chosen.id)
      }
      rates.record(chosen.id)
      return chosen
    },
  }
}

function lowestQps(candidates: readonly Endpoint[], rates: RequestRateWindow): Endpoint {
  let best = candidates[0]!
  let bestRate = rates.rate(best.id)
  for (let i = 1; i < candidates.length; i++) {
    const rate = rates.rate(candidates[i]!.id)
    if (rate < bestRate) {
      best = candidates[i]!
      bestRate = rate
    }
  }
  return best
}

export const vllmPrefixAwarePicker = definePicker({
  name: 'vllm-prefix-aware',
  hashKey: 'ignored',
  optionsSchema: vllmPrefixAwareOptionsSchema,
  create: (options, deps) => createVllmPrefixAwarePicker(options, deps),
})
