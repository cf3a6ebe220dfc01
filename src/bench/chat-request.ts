import type { PromptBuilder } from './prompt-builder.ts'
import type { TraceRequest } from './trace-request.ts'

/** The simulator's private header: the true output length, which only the engine reads. */
export const SIM_OUTPUT_TOKENS_HEADER = 'x-aya-sim-output-tokens'
/** The conversation key, for session-affinity policies (`hashKey: { header: x-session-id }`). */
export const SESSION_HEADER = 'x-session-id'

export interface ChatRequestBody {
  readonly model: string
  readonly messages: ReadonlyArray<{ readonly role: string; readonly content: string }>
  readonly stream: true
  readonly stream_options: { readonly include_usage: true }
  readonly max_tokens: number
}

/** The streaming chat completion a replayed request sends: same for every policy and mode. */
export function chatRequestBody(
  request: TraceRequest,
  prompts: PromptBuilder,
  model: string,
  maxTokens: number,
): ChatRequestBody {
  return {
    model,
    messages: prompts.messages(request),
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: maxTokens,
  }
}

export function chatRequestHeaders(request: TraceRequest): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [SIM_OUTPUT_TOKENS_HEADER]: String(request.outputTokens),
  }
  if (request.sessionId !== undefined) headers[SESSION_HEADER] = request.sessionId
  return headers
}
