/** Which API a request speaks; decides parsing, error shape and how usage is read. */
export type LlmApi =
  | 'openai.chat'
  | 'openai.completions'
  | 'openai.responses'
  | 'openai.embeddings'
  | 'anthropic.messages'

/**
 * An LLM request as policies see it: parsed once by the models gateway, never re-parsed.
 * `promptText` is the prompt flattened the way an engine's chat template would (system prompt and
 * all messages, in order, roles included), so that prefix identity follows what the engine caches.
 */
export interface LlmRequest {
  readonly api: LlmApi
  /** The model name the client asked for. */
  readonly model: string
  /** The name the chosen deployment serves it under (may differ from `model`). */
  readonly servedModel: string
  readonly stream: boolean
  /** The client's output cap, per sequence; 0 for embeddings, which generate nothing. */
  readonly maxTokens: number | undefined
  /**
   * Sequences generated for the one prompt (OpenAI's `n`, or `best_of` where larger); undefined
   * means 1. Each holds its own output in KV and shares the prompt's.
   */
  readonly sequences?: number | undefined
  readonly promptText: string
  /** Router-side estimate of prompt tokens (exact when `promptTokensExact`). */
  readonly promptTokens: number
  /**
   * The client sent token ids, so `promptTokens` is their count and `promptText` is their
   * fixed-width form (tokenIdsText), not prose: no chars-per-token ratio may be learned from it.
   */
  readonly promptTokensExact?: boolean
  /**
   * Images, audio, video and files in the prompt: each is a short marker in `promptText` and
   * `MEDIA_PART_TOKENS` in `promptTokens`, an estimate (a vision model's image is hundreds to
   * thousands of tokens). Such a prompt teaches no chars-per-token ratio.
   */
  readonly mediaParts?: number | undefined
  /**
   * Earlier turns of the prompt are held upstream, not sent (a Responses turn continuing
   * `previous_response_id` or a `conversation`, or a stored `prompt`): the engine's count of the
   * prompt holds text the router never saw, so no chars-per-token ratio may be learned from it.
   */
  readonly promptHeldUpstream?: boolean | undefined
  /** An affinity key from a session header, when present. */
  readonly sessionKey: string | undefined
  /** The route (or tenant) that output lengths are learned and predicted under. */
  readonly routeKey: string
}
