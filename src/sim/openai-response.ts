import type { FinishReason } from './sim-request.ts'

/** The identity every chunk of one response repeats. */
export interface ResponseIdentity {
  readonly id: string
  readonly created: number
  readonly model: string
}

export interface Usage {
  readonly prompt_tokens: number
  readonly total_tokens: number
  readonly completion_tokens: number
  /** What vLLM reports with `--enable-prompt-tokens-details`, as OpenAI does. */
  readonly prompt_tokens_details: { readonly cached_tokens: number }
}

/** `cachedTokens`: prompt tokens the prefix cache held when the request was first scheduled. */
export function usageOf(
  promptTokens: number,
  completionTokens: number,
  cachedTokens: number,
): Usage {
  return {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completionTokens,
    completion_tokens: completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  }
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`
}

export const SSE_DONE = 'data: [DONE]\n\n'

/** The usage so far, as vLLM puts it on each chunk under `continuous_usage_stats`. */
interface RunningUsage {
  readonly prompt_tokens: number
  readonly total_tokens: number
  readonly completion_tokens: number
}

export interface ChunkOptions {
  readonly includeUsage: boolean
  /**
   * `stream_options.continuous_usage_stats` with usage included: every chunk carries the usage so
   * far (vLLM's `include_continuous_usage`) instead of `usage: null`.
   */
  readonly continuousUsage?: { readonly promptTokens: number }
}

/** The `usage` field of a chunk that carries `completionTokens` generated tokens so far. */
function chunkUsage(o: ChunkOptions, completionTokens: number): { usage?: RunningUsage | null } {
  if (!o.includeUsage) return {}
  if (!o.continuousUsage) return { usage: null }
  const { promptTokens } = o.continuousUsage
  return {
    usage: {
      prompt_tokens: promptTokens,
      total_tokens: promptTokens + completionTokens,
      completion_tokens: completionTokens,
    },
  }
}

export function chatChunk(
  r: ResponseIdentity,
  delta: { role?: 'assistant'; content?: string },
  finishReason: FinishReason | null,
  o: ChunkOptions,
  completionTokens = 0,
): unknown {
  return {
    id: r.id,
    object: 'chat.completion.chunk',
    created: r.created,
    model: r.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...chunkUsage(o, completionTokens),
  }
}

export function completionChunk(
  r: ResponseIdentity,
  text: string,
  finishReason: FinishReason | null,
  o: ChunkOptions,
  completionTokens = 0,
): unknown {
  return {
    id: r.id,
    object: 'text_completion',
    created: r.created,
    model: r.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
    ...chunkUsage(o, completionTokens),
  }
}

/** The last chunk before `[DONE]` when `stream_options.include_usage` is set. */
export function usageChunk(
  r: ResponseIdentity,
  api: 'chat' | 'completions',
  usage: Usage,
): unknown {
  return {
    id: r.id,
    object: api === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: r.created,
    model: r.model,
    choices: [],
    usage,
  }
}

export function chatBody(
  r: ResponseIdentity,
  content: string,
  finishReason: FinishReason,
  usage: Usage,
): unknown {
  return {
    id: r.id,
    object: 'chat.completion',
    created: r.created,
    model: r.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage,
  }
}

export function completionBody(
  r: ResponseIdentity,
  text: string,
  finishReason: FinishReason,
  usage: Usage,
): unknown {
  return {
    id: r.id,
    object: 'text_completion',
    created: r.created,
    model: r.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
    usage,
  }
}

/** OpenAI's error shape. */
export function errorBody(
  message: string,
  type: string,
  param: string | null,
  code: string | number | null,
): unknown {
  return { error: { message, type, param, code } }
}

/**
 * The SSE event of one generated token, `completionTokens` being the count with it, for the hot
 * path: the JSON around the token text is built once per response, so each token costs one small
 * `JSON.stringify`. The output is byte-identical to `sseData(chatChunk(...))` or
 * `sseData(completionChunk(...))`. Continuous usage changes every chunk, so it takes the slow path.
 */
export function createTokenEventFormatter(
  r: ResponseIdentity,
  api: 'chat' | 'completions',
  o: ChunkOptions,
): (text: string, completionTokens: number) => string {
  if (o.includeUsage && o.continuousUsage) {
    return (text, completionTokens) =>
      sseData(
        api === 'chat'
          ? chatChunk(r, { content: text }, null, o, completionTokens)
          : completionChunk(r, text, null, o, completionTokens),
      )
  }
  const marker = '\u0000token\u0000'
  const template =
    api === 'chat'
      ? sseData(chatChunk(r, { content: marker }, null, o))
      : sseData(completionChunk(r, marker, null, o))
  const at = template.indexOf(JSON.stringify(marker))
  const head = template.slice(0, at)
  const tail = template.slice(at + JSON.stringify(marker).length)
  return (text) => head + JSON.stringify(text) + tail
}
