import { parseLlmBody, toLlmRequest } from '../llm/llm-body.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import { chatPromptIdentity, type PromptIdentity } from '../sim/sim-tokenizer.ts'
import { type ChatRequestBody, chatRequestBody } from './chat-request.ts'
import type { PromptBuilder } from './prompt-builder.ts'
import type { TraceRequest } from './trace-request.ts'

/** A replayed request as virtual time needs it: what Aya's parser makes of it, and the engine's view. */
export interface PreparedRequest {
  readonly body: ChatRequestBody
  readonly llm: LlmRequest
  readonly identity: PromptIdentity
}

export interface PreparedRequests {
  get(request: TraceRequest): PreparedRequest
}

export interface PreparedRequestsOptions {
  readonly prompts: PromptBuilder
  readonly model: string
  readonly maxTokens: number
  readonly kvBlockTokens: number
  /** Prompt characters kept across runs; past this, requests are rebuilt each time. */
  readonly maxCachedChars?: number
}

/**
 * Builds each request's body, its LlmRequest (parsed exactly as the proxy's llm-extract does) and
 * its simulator identity once, and keeps them for the next policy and rate scale: text and
 * hashing are most of a virtual-time run's cost, and every run replays the same requests.
 */
export function createPreparedRequests(options: PreparedRequestsOptions): PreparedRequests {
  const maxCachedChars = options.maxCachedChars ?? 64 * 1024 * 1024
  const cache = new Map<number, PreparedRequest>()
  let cachedChars = 0
  return {
    get(request) {
      const hit = cache.get(request.id)
      if (hit) return hit
      const body = chatRequestBody(request, options.prompts, options.model, options.maxTokens)
      const parsed = parseLlmBody('openai.chat', body)
      if (!parsed.ok) throw new Error(`bench built an invalid body: ${parsed.message}`)
      const prepared: PreparedRequest = {
        body,
        llm: toLlmRequest('openai.chat', parsed.value, options.model, request.sessionId),
        identity: chatPromptIdentity(body.messages, options.kvBlockTokens),
      }
      const chars = parsed.value.promptText.length
      if (cachedChars + chars <= maxCachedChars) {
        cache.set(request.id, prepared)
        cachedChars += chars
      }
      return prepared
    },
  }
}
