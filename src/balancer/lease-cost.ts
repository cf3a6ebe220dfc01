import type { LlmRequest } from '../llm/llm-request.ts'
import type { Endpoint, LeaseCost } from '../upstream/endpoint.ts'
import type { PickContext, Picker } from './picker.ts'

/**
 * The router-side cost an LLM request charges the endpoint it was placed on, at dispatch. A policy
 * that knows better (how much of the prompt it expects the endpoint to have cached) says so through
 * `Picker.leaseCost`; otherwise the whole prompt is pending prefill until the first token, and the
 * KV held is the prompt plus the `max_tokens` cap. The proxy and the virtual-time bench both charge
 * through here, so the two account for load the same way.
 */
export function leaseCostFor(
  picker: Picker,
  endpoint: Endpoint,
  ctx: PickContext,
): LeaseCost | undefined {
  if (!ctx.llm) return undefined
  return picker.leaseCost?.(endpoint, ctx) ?? defaultLeaseCost(ctx.llm)
}

export function defaultLeaseCost(llm: LlmRequest): LeaseCost {
  return { prefillTokens: llm.promptTokens, kvTokens: llm.promptTokens + (llm.maxTokens ?? 0) }
}
