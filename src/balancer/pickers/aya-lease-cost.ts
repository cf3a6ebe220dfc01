import type { LlmRequest } from '../../llm/llm-request.ts'
import type { OutputLengthPredictor } from '../../llm/output-length-predictor.ts'
import type { LeaseCost } from '../../upstream/endpoint.ts'

/**
 * What a placement charges its endpoint: the uncached prompt as pending prefill, and as KV the
 * prompt plus predicted output, re-estimated as the response streams (generated so far plus the
 * output still expected given how far it has come), so a response that outruns its prediction
 * is charged for it. The part of the prompt a request in flight there already pins is shared in
 * the engine's cache and not charged again; the lease pins the prompt's blocks in turn.
 */
export function ayaLeaseCost(
  placed: {
    /** Prompt tokens to prefill there (after its hit). */
    readonly uncachedTokens: number
    /** Prompt tokens a request in flight there already pins. */
    readonly pinnedTokens: number
  },
  request: {
    readonly llm: LlmRequest
    readonly promptTokens: number
    /** Its prompt plus predicted output, with nothing pinned. */
    readonly kvNeed: number
    readonly hashes: readonly number[]
  },
  outputs: OutputLengthPredictor | undefined,
): LeaseCost {
  const prefillTokens = placed.uncachedTokens
  const kvTokens = request.kvNeed - placed.pinnedTokens
  // The prompt's blocks stay pinned in the engine while the request lives.
  const pinnedBlocks = request.hashes.length > 0 ? request.hashes : undefined
  if (!outputs) return { prefillTokens, kvTokens, pinnedBlocks }
  const { llm, promptTokens } = request
  const key = { model: llm.servedModel, route: llm.routeKey }
  const { maxTokens } = llm
  const promptKv = promptTokens - placed.pinnedTokens
  // Several sequences share the prompt's KV and each grows its own.
  const sequences = llm.sequences ?? 1
  return {
    prefillTokens,
    kvTokens,
    pinnedBlocks,
    kvTokensAfter: (generated) =>
      promptKv +
      sequences * (generated + outputs.remaining(key, promptTokens, maxTokens, generated)),
  }
}
