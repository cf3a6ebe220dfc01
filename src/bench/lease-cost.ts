import type { LlmRequest } from '../llm/llm-request.ts'
import type { LeaseCost } from '../upstream/endpoint.ts'

/**
 * The router-side cost of an LLM request, charged to the endpoint's lease at dispatch. It must be
 * the same as the proxy's, so that virtual-time runs account for load as HTTP runs do: the prompt
 * estimate is pending prefill until the first token; KV is the prompt plus the `max_tokens` cap.
 */
export function leaseCostFor(llm: LlmRequest): LeaseCost {
  return {
    prefillTokens: llm.promptTokens,
    kvTokens: llm.promptTokens + (llm.maxTokens ?? 0),
  }
}
