import { isRecord } from '../util/is-record.ts'
import type { InferenceRequest } from './inference-request.ts'
import { type ChatMessageLike, chatPromptIdentity } from './sim-tokenizer.ts'

export interface AnthropicRequestError {
  readonly message: string
}

type Body = Record<string, unknown>

const fail = (message: string): AnthropicRequestError => ({ message })

export function isAnthropicError(v: unknown): v is AnthropicRequestError {
  return isRecord(v) && typeof v.message === 'string'
}

/**
 * Validates an Anthropic Messages body as the engines that serve `/v1/messages` next to the
 * OpenAI API do (SGLang, vLLM): `model`, `max_tokens` and a non-empty `messages` of user and
 * assistant turns are required. The prompt is flattened under the simulator's chat template with
 * `system` (a string or text blocks) as a leading system message, as those engines turn the body
 * into a chat request; content blocks count by their `text`.
 */
export function parseAnthropicRequest(
  body: unknown,
  blockSizeTokens = 16,
): InferenceRequest | AnthropicRequestError {
  if (!isRecord(body)) return fail('the request body must be a JSON object')
  if (typeof body.model !== 'string' || body.model === '') return fail('model: Field required')
  const maxTokens = body.max_tokens
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    return fail('max_tokens: must be an integer of at least 1')
  }
  const stream = body.stream ?? false
  if (typeof stream !== 'boolean') return fail('stream: must be a boolean')
  const { messages, system } = body
  if (!Array.isArray(messages) || messages.length === 0) {
    return fail('messages: must be a non-empty array')
  }
  for (const m of messages) {
    if (!isRecord(m) || (m.role !== 'user' && m.role !== 'assistant')) {
      return fail('messages: each message must have a role of "user" or "assistant"')
    }
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) {
      return fail('messages: content must be a string or an array of content blocks')
    }
  }
  if (system !== undefined && typeof system !== 'string' && !Array.isArray(system)) {
    return fail('system: must be a string or an array of text blocks')
  }
  const turns: ChatMessageLike[] = system === undefined ? [] : [{ role: 'system', content: system }]
  for (const m of messages as Body[]) turns.push({ role: m.role, content: m.content })
  return {
    api: 'messages',
    model: body.model,
    isStream: stream,
    // Anthropic's answers always carry usage: in the body, or across message_start and
    // message_delta when streamed.
    includeUsage: true,
    continuousUsage: false,
    maxTokens,
    prompt: chatPromptIdentity(turns, blockSizeTokens),
  }
}
