import type { Clock } from '../util/clock.ts'
import { createEndpointCapacity, type EndpointCapacity } from './endpoint-capacity.ts'
import type { LlmResponseObservation } from './llm-observation.ts'
import {
  createOutputLengthPredictor,
  type OutputLengthPredictor,
} from './output-length-predictor.ts'
import { createPromptTokenCounter, type PromptTokenCounter } from './prompt-token-counter.ts'

/**
 * What Aya learns from the LLM traffic it carries, one per instance: prompt-token calibration,
 * output-length prediction and each endpoint's capacity. The proxy and the virtual-time bench feed
 * it the same observations; policies read it.
 */
export interface LlmSignals {
  readonly tokens: PromptTokenCounter
  readonly outputs: OutputLengthPredictor
  readonly capacity: EndpointCapacity
  observe(observation: LlmResponseObservation): void
}

export function createLlmSignals(deps: { readonly clock: Clock }): LlmSignals {
  const tokens = createPromptTokenCounter()
  const outputs = createOutputLengthPredictor()
  const capacity = createEndpointCapacity({}, deps)
  return {
    tokens,
    outputs,
    capacity,
    observe(observation) {
      const { llm, tap, endpoint } = observation
      if (!observation.ok) return
      const usage = tap.usage
      if (usage && usage.promptTokens > 0) {
        tokens.observe(llm.servedModel, llm.promptText.length, usage.promptTokens)
      }
      if (usage && llm.api !== 'openai.embeddings') {
        outputs.observe(
          { model: llm.servedModel, route: llm.routeKey },
          usage.promptTokens || llm.promptTokens,
          llm.maxTokens,
          usage.completionTokens,
        )
      }
      if (tap.firstTokenAtMs !== undefined) {
        const streamedGaps = tap.contentEvents - 1
        capacity.observe(endpoint.id, {
          prefillAheadTokens: observation.prefillAheadTokens,
          prefillTokens: observation.prefillTokens,
          ttftMs: tap.firstTokenAtMs - observation.sentAtMs,
          meanItlMs:
            streamedGaps > 0 && tap.lastTokenAtMs !== undefined
              ? (tap.lastTokenAtMs - tap.firstTokenAtMs) / streamedGaps
              : undefined,
        })
      }
    },
  }
}
