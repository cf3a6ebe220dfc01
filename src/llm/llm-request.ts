/** Which API a request speaks; decides parsing, error shape and how usage is read. */
export type LlmApi = 'openai.chat' | 'openai.completions'

/**
 * An LLM request as policies see it: parsed once by the llm-extract filter, never re-parsed.
 * `promptText` is the prompt flattened the way an engine's chat template would (all messages, in
 * order, roles included), so that prefix identity follows what the engine actually caches.
 */
export interface LlmRequest {
  readonly api: LlmApi
  /** The model name the client asked for. */
  readonly model: string
  /** The name the chosen deployment serves it under (may differ from `model`). */
  readonly servedModel: string
  readonly stream: boolean
  readonly maxTokens: number | undefined
  readonly promptText: string
  /** Router-side estimate of prompt tokens. */
  readonly promptTokens: number
  /** An affinity key from a session header, when present. */
  readonly sessionKey: string | undefined
}
