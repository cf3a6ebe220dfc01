import type { LlmRequest } from '../../llm/llm-request.ts'
import type { OutputLengthPredictor } from '../../llm/output-length-predictor.ts'
import type { LeaseCost } from '../../upstream/endpoint.ts'

/**
 * What a placement charges its endpoint: the uncached prompt as pending prefill, and as KV the
 * prompt plus predicted output, re-estimated as the response streams (generated so far plus the
 * output still expected given how far it has come), so a response that outruns its prediction
 * is charged for it. The prompt's hashed blocks are pinned rather than charged here: the
 * endpoint charges each block once while any request in flight holds it, as the engine's prefix
 * cache keeps one copy.
 */
export function ayaLeaseCost(
  placed: {
    /** Prompt tokens to prefill there (after its hit). */
    readonly uncachedTokens: number
  },
  request: {
    readonly llm: LlmRequest
    readonly promptTokens: number
    /** Its prompt plus predicted output. */
    readonly kvNeed: number
    readonly hashes: readonly number[]
    /** Prompt tokens one hashed block stands for. */
    readonly blockTokens: number
  },
  outputs: OutputLengthPredictor | undefined,
): LeaseCost {
  const prefillTokens = placed.uncachedTokens
  const { llm, promptTokens, hashes } = request
  // The prompt's blocks stay pinned in the engine while the request lives.
  const hashedTokens = Math.min(promptTokens, hashes.length * request.blockTokens)
  const pinnedBlocks = hashes.length > 0 ? hashes : undefined
  const pinnedBlockTokens = hashes.length > 0 ? hashedTokens / hashes.length : undefined
  const kvTokens = request.kvNeed - hashedTokens
  if (!outputs) return { prefillTokens, kvTokens, pinnedBlocks, pinnedBlockTokens }
  const key = { model: llm.servedModel, route: llm.routeKey }
  const { maxTokens } = llm
  const promptKv = promptTokens - hashedTokens
  // Several sequences share the prompt's KV and each grows its own.
  const sequences = llm.sequences ?? 1
  return {
    prefillTokens,
    kvTokens,
    pinnedBlocks,
    pinnedBlockTokens,
    kvTokensAfter: (generated) =>
      promptKv +
      sequences * (generated + outputs.remaining(key, promptTokens, maxTokens, generated)),
  }
}
