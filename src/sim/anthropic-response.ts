import type { FinishReason } from './sim-request.ts'

/** The identity every event of one message repeats. */
export interface MessageIdentity {
  readonly id: string
  readonly model: string
}

/**
 * Anthropic's usage: `input_tokens` leaves out what the prompt cache served, which
 * `cache_read_input_tokens` reports (their sum is the prompt), as the Messages API counts them.
 */
export interface AnthropicUsage {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cache_read_input_tokens: number
  readonly cache_creation_input_tokens: number
}

export function anthropicUsageOf(
  promptTokens: number,
  completionTokens: number,
  cachedTokens: number,
): AnthropicUsage {
  return {
    input_tokens: promptTokens - cachedTokens,
    output_tokens: completionTokens,
    cache_read_input_tokens: cachedTokens,
    cache_creation_input_tokens: 0,
  }
}

function stopReasonOf(finishReason: FinishReason): 'end_turn' | 'max_tokens' {
  return finishReason === 'length' ? 'max_tokens' : 'end_turn'
}

/** One server-sent event, named as the Messages stream names each. */
function sseEvent(name: string, payload: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`
}

export function messageBody(
  m: MessageIdentity,
  text: string,
  finishReason: FinishReason,
  usage: AnthropicUsage,
): unknown {
  return {
    id: m.id,
    type: 'message',
    role: 'assistant',
    model: m.model,
    content: [{ type: 'text', text }],
    stop_reason: stopReasonOf(finishReason),
    stop_sequence: null,
    usage,
  }
}

/**
 * `message_start` and the text block's start, sent with the first token. The start carries the
 * prompt's size; how much of it the cache served is known once the request ends, and
 * `message_delta` carries the whole usage then, as the Messages API's final delta does.
 */
export function messageStartEvents(m: MessageIdentity, promptTokens: number): string {
  return (
    sseEvent('message_start', {
      type: 'message_start',
      message: {
        id: m.id,
        type: 'message',
        role: 'assistant',
        model: m.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: promptTokens, output_tokens: 0 },
      },
    }) +
    sseEvent('content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    })
  )
}

export function textDeltaEvent(text: string): string {
  return sseEvent('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text },
  })
}

/** The block's end, the stop reason with the final usage, and `message_stop`. */
export function messageEndEvents(finishReason: FinishReason, usage: AnthropicUsage): string {
  return (
    sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }) +
    sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReasonOf(finishReason), stop_sequence: null },
      usage,
    }) +
    sseEvent('message_stop', { type: 'message_stop' })
  )
}

/** Anthropic's error shape. */
export function messagesErrorBody(type: string, message: string): unknown {
  return { type: 'error', error: { type, message } }
}
