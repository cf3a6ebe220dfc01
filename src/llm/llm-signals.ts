import type { Clock } from '../util/clock.ts'
import { credibleOutputTokens } from './credible-output-tokens.ts'
import { createEndpointCapacity, type EndpointCapacity } from './endpoint-capacity.ts'
import type { LlmResponseObservation } from './llm-observation.ts'
import type { LlmRequest } from './llm-request.ts'
import {
  createOutputLengthPredictor,
  type OutputLengthPredictor,
} from './output-length-predictor.ts'
import { createPromptTokenCounter, type PromptTokenCounter } from './prompt-token-counter.ts'
import type { TapResult } from './response-tap.ts'

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
  /**
   * The request's predicted output tokens: the predictor's mean (which sums right over many
   * requests, where the `max_tokens` cap over-counts 2.4–74× on the traces) for each of its
   * sequences, 0 for embeddings.
   * Predicted once per request: what KV accounting charges and what the queue orders by agree.
   */
  predictedOutput(llm: LlmRequest): number
  /**
   * A request's predicted work in tokens: its prompt plus its predicted output. What the admission
   * queue orders shortest-predicted-first by.
   */
  predictedCost(llm: LlmRequest): number
}

export function createLlmSignals(deps: { readonly clock: Clock }): LlmSignals {
  const tokens = createPromptTokenCounter()
  const outputs = createOutputLengthPredictor()
  const capacity = createEndpointCapacity({}, deps)
  const predicted = new WeakMap<LlmRequest, number>()
  const predictedOutput = (llm: LlmRequest): number => {
    let output = predicted.get(llm)
    if (output === undefined) {
      output =
        llm.api === 'openai.embeddings'
          ? 0
          : outputs.predict(
              { model: llm.servedModel, route: llm.routeKey },
              Math.max(1, llm.promptTokens),
              llm.maxTokens,
            ).mean * (llm.sequences ?? 1)
      predicted.set(llm, output)
    }
    return output
  }
  return {
    tokens,
    outputs,
    capacity,
    predictedOutput,
    predictedCost: (llm) => Math.max(1, llm.promptTokens) + predictedOutput(llm),
    observe(observation) {
      const { llm, tap, endpoint } = observation
      if (!observation.ok) return
      const usage = tap.usage
      // Token ids arrive as their fixed-width text (4 characters each): their length says nothing
      // about the model's prose, and would drag its ratio toward 4. An image's tokens have no
      // characters at all: traffic rich in them would drag the ratio toward the floor. Nor have
      // the earlier turns an upstream holds, counted in its usage though the router never saw them.
      if (
        usage &&
        usage.promptTokens > 0 &&
        llm.promptTokensExact !== true &&
        (llm.mediaParts ?? 0) === 0 &&
        llm.promptHeldUpstream !== true
      ) {
        tokens.observe(llm.servedModel, llm.promptText.length, usage.promptTokens)
      }
      // A response cut short or failed in its stream says nothing about how long it would have
      // been: Anthropic's usage at `message_start` counts 1 output token, for one.
      if (llm.api !== 'openai.embeddings' && observation.completed !== false && !tap.sawError) {
        const key = { model: llm.servedModel, route: llm.routeKey }
        // Learned under the prompt length predictions are asked with, the router's count: the
        // engine's (which adds its chat template) can fall in another length bucket.
        const promptTokens = Math.max(1, llm.promptTokens)
        // Lengths are learned per sequence: usage and events count all of a request's together.
        const sequences = llm.sequences ?? 1
        if (usage) {
          // Believed only as far as the response could have produced it: a claim learned whole
          // (an endpoint reporting millions) would charge every request its KV, and send the
          // traffic to whichever endpoint is idle, the liar that answers at once.
          const completionTokens = credibleOutputTokens(usage.completionTokens, {
            maxTokens: llm.maxTokens,
            sequences,
            bodyBytes: tap.bodyBytes,
          })
          outputs.observe(key, promptTokens, llm.maxTokens, completionTokens / sequences)
        } else if (llm.stream && observation.completed === true && tap.contentEvents > 0) {
          // An OpenAI stream reports usage only when the client asks (`stream_options`); most do
          // not. Engines stream about one token an event, so a whole stream's event count is its
          // output, near enough to learn from: without it such traffic would teach nothing.
          outputs.observe(key, promptTokens, llm.maxTokens, tap.contentEvents / sequences)
        }
      }
      if (observation.endpointCurrent !== false && isTtftSample(llm.stream, tap)) {
        // Several sequences stream interleaved, one token of each a step.
        const streamedGaps = Math.floor(tap.contentEvents / (llm.sequences ?? 1)) - 1
        capacity.observe(endpoint.id, {
          prefillAheadTokens: observation.prefillAheadTokens,
          prefillTokens: observation.prefillTokens,
          ttftMs: tap.firstTokenAtMs - observation.sentAtMs,
          meanItlMs:
            streamedGaps > 0 &&
            tap.lastTokenAtMs !== undefined &&
            observation.clientStalled !== true
              ? (tap.lastTokenAtMs - tap.firstTokenAtMs) / streamedGaps
              : undefined,
        })
      }
    },
  }
}

/**
 * Whether the first token's time is a time to first token: only when the response streamed. A
 * complete body arrives when the whole generation is done, and so does a stream that something
 * between us and the engine buffered (all its tokens came at one instant); taken as TTFT, either
 * would teach the prefill learner a rate slower by the whole decode time.
 */
function isTtftSample(
  streamed: boolean,
  tap: TapResult,
): tap is TapResult & { readonly firstTokenAtMs: number } {
  if (!streamed || tap.firstTokenAtMs === undefined) return false
  return !(tap.contentEvents > 1 && tap.lastTokenAtMs === tap.firstTokenAtMs)
}
