import { isRecord } from '../util/is-record.ts'
import {
  chatPromptIdentity,
  type PromptIdentity,
  promptIdentity,
  textPromptIdentity,
} from './sim-tokenizer.ts'

export type OpenAiApi = 'chat' | 'completions'

export interface OpenAiRequest {
  readonly api: OpenAiApi
  readonly model: string | undefined
  readonly isStream: boolean
  readonly includeUsage: boolean
  /** `stream_options.continuous_usage_stats`, honoured only with usage included, as in vLLM. */
  readonly continuousUsage: boolean
  readonly maxTokens: number | undefined
  /** The prompt under the sim token rule (chat: flattened under the chat template). */
  readonly prompt: PromptIdentity
}

export interface OpenAiRequestError {
  readonly message: string
  readonly param: string | null
}

type Body = Record<string, unknown>

function fail(message: string, param: string | null): OpenAiRequestError {
  return { message, param }
}

function readMaxTokens(body: Body, api: OpenAiApi): number | undefined | OpenAiRequestError {
  const names = api === 'chat' ? ['max_completion_tokens', 'max_tokens'] : ['max_tokens']
  for (const name of names) {
    const value = body[name]
    if (value === undefined || value === null) continue
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      return fail(`${name} must be an integer of at least 1`, name)
    }
    return value
  }
  // vLLM and OpenAI generate 16 tokens on legacy completions that name no cap; an explicit
  // null means up to the context window, as on chat.
  if (api === 'completions' && body.max_tokens === undefined) return COMPLETIONS_DEFAULT_MAX_TOKENS
  return undefined
}

const COMPLETIONS_DEFAULT_MAX_TOKENS = 16

function completionPrompt(prompt: unknown, blockSize: number): PromptIdentity | OpenAiRequestError {
  const single = Array.isArray(prompt) && prompt.length === 1 ? prompt[0] : prompt
  if (typeof single === 'string') return textPromptIdentity(single, blockSize)
  if (Array.isArray(single) && single.length > 0 && single.every((t) => Number.isInteger(t))) {
    return promptIdentity(
      single.map((t) => `#${t}`),
      blockSize,
    )
  }
  return fail(
    'prompt must be a string, a token id array, or a one-element list of either',
    'prompt',
  )
}

function chatPrompt(messages: unknown, blockSize: number): PromptIdentity | OpenAiRequestError {
  if (!Array.isArray(messages) || messages.length === 0) {
    return fail('messages must be a non-empty array', 'messages')
  }
  for (const m of messages) {
    if (!isRecord(m) || typeof m.role !== 'string') {
      return fail('each message must be an object with a string role', 'messages')
    }
    // vLLM's schema takes text, a list of content parts, or none (an assistant's tool calls).
    const { content } = m
    if (
      content !== undefined &&
      content !== null &&
      typeof content !== 'string' &&
      !Array.isArray(content)
    ) {
      return fail(
        'a message content must be a string, an array of content parts, or null',
        'messages',
      )
    }
  }
  return chatPromptIdentity(messages as Body[], blockSize)
}

/** Validates an OpenAI chat or completions body the way the simulator needs it. */
export function parseOpenAiRequest(
  api: OpenAiApi,
  body: unknown,
  blockSizeTokens = 16,
): OpenAiRequest | OpenAiRequestError {
  if (!isRecord(body)) return fail('the request body must be a JSON object', null)
  if (body.model !== undefined && body.model !== null && typeof body.model !== 'string') {
    return fail('model must be a string', 'model')
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    return fail('the simulator supports only n = 1', 'n')
  }
  const stream = body.stream ?? false
  if (typeof stream !== 'boolean' && stream !== null)
    return fail('stream must be a boolean', 'stream')
  const streamOptions = body.stream_options
  // vLLM and OpenAI refuse stream options on a request that does not stream; a client that sends
  // them (a stream turned off, its options left) must fail here as it would on a real engine.
  if (stream !== true && isRecord(streamOptions) && Object.keys(streamOptions).length > 0) {
    return fail('Stream options can only be defined when `stream=True`.', 'stream_options')
  }
  // vLLM's `StreamOptions.include_usage` defaults to true: `stream_options: {}` asks for usage.
  const includeUsage =
    isRecord(streamOptions) &&
    (streamOptions.include_usage === undefined || streamOptions.include_usage === true)
  const maxTokens = readMaxTokens(body, api)
  if (isError(maxTokens)) return maxTokens
  const prompt =
    api === 'chat'
      ? chatPrompt(body.messages, blockSizeTokens)
      : completionPrompt(body.prompt, blockSizeTokens)
  if (isError(prompt)) return prompt
  return {
    api,
    // vLLM serves its default model to an empty name as to a missing one (`_is_model_supported`).
    model: typeof body.model === 'string' && body.model !== '' ? body.model : undefined,
    isStream: stream === true,
    includeUsage,
    continuousUsage:
      includeUsage && isRecord(streamOptions) && streamOptions.continuous_usage_stats === true,
    maxTokens,
    prompt,
  }
}

export function isError(v: unknown): v is OpenAiRequestError {
  return isRecord(v) && typeof v.message === 'string' && 'param' in v
}
