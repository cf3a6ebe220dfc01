import type { LlmApi } from './llm-request.ts'

export interface TokenUsage {
  readonly promptTokens: number
  readonly completionTokens: number
}

/** What the tap saw of one response, in clock milliseconds. */
export interface TapResult {
  readonly firstTokenAtMs: number | undefined
  readonly lastTokenAtMs: number | undefined
  /** Content-bearing events (streaming) or 1 for a complete body. */
  readonly contentEvents: number
  readonly usage: TokenUsage | undefined
}

/**
 * Watches an LLM response as it streams through, without buffering it or slowing it down: it spots
 * content events (for time to first token and inter-token gaps) and the `usage` the upstream
 * reports (OpenAI's usage chunk or body, Anthropic's `message_start` / `message_delta`). Only events
 * that mention usage are JSON-parsed; a partial event at a chunk boundary is carried over, bounded.
 */
export interface ResponseTap {
  onChunk(chunk: Buffer, nowMs: number): void
  /** When the first generated text passed, once it has. */
  readonly firstTokenAtMs: number | undefined
  finish(): TapResult
}

const MAX_CARRY_CHARS = 1 << 16
const MAX_BODY_CHARS = 1 << 20

export function createResponseTap(api: LlmApi, streaming: boolean): ResponseTap {
  let firstTokenAtMs: number | undefined
  let lastTokenAtMs: number | undefined
  let contentEvents = 0
  let promptTokens: number | undefined
  let completionTokens: number | undefined
  let carry = ''
  let body = ''

  const readUsage = (json: unknown) => {
    const record = json as Record<string, unknown> | null
    if (!record || typeof record !== 'object') return
    const usage = (record.usage ??
      (record.message as Record<string, unknown> | undefined)?.usage) as
      | Record<string, unknown>
      | null
      | undefined
    if (!usage || typeof usage !== 'object') return
    const input = usage.prompt_tokens ?? usage.input_tokens
    const output = usage.completion_tokens ?? usage.output_tokens
    if (typeof input === 'number') promptTokens = input
    if (typeof output === 'number') completionTokens = output
  }

  const onEvent = (data: string, nowMs: number) => {
    if (isContentEvent(api, data)) {
      contentEvents++
      firstTokenAtMs ??= nowMs
      lastTokenAtMs = nowMs
    }
    if (data.includes('"usage"') || data.includes('_tokens"')) {
      try {
        readUsage(JSON.parse(data))
      } catch {
        // Not JSON (e.g. [DONE]) or truncated: usage is simply not learned from this event.
      }
    }
  }

  return {
    get firstTokenAtMs() {
      return firstTokenAtMs
    },
    onChunk(chunk, nowMs) {
      const text = chunk.toString('utf8')
      if (!streaming) {
        firstTokenAtMs ??= nowMs
        lastTokenAtMs = nowMs
        if (body.length < MAX_BODY_CHARS) body += text
        return
      }
      let buffer = carry + text
      let end = buffer.indexOf('\n\n')
      while (end !== -1) {
        const event = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        for (const line of event.split('\n')) {
          if (line.startsWith('data:'))
            onEvent(line.slice(line.charCodeAt(5) === 32 ? 6 : 5), nowMs)
        }
        end = buffer.indexOf('\n\n')
      }
      carry = buffer.length > MAX_CARRY_CHARS ? '' : buffer
    },
    finish() {
      if (!streaming && body !== '') {
        contentEvents = 1
        try {
          readUsage(JSON.parse(body))
        } catch {
          // An unparsable body teaches nothing about usage.
        }
      }
      return {
        firstTokenAtMs,
        lastTokenAtMs,
        contentEvents,
        usage:
          promptTokens !== undefined || completionTokens !== undefined
            ? { promptTokens: promptTokens ?? 0, completionTokens: completionTokens ?? 0 }
            : undefined,
      }
    },
  }
}

/** A streamed event that carries generated text (not a role prelude, not a usage-only chunk). */
function isContentEvent(api: LlmApi, data: string): boolean {
  if (api === 'anthropic.messages')
    return data.includes('"content_block_delta"') && !data.includes('"text":""')
  for (const marker of ['"content":"', '"text":"', '"delta":"']) {
    let at = data.indexOf(marker)
    while (at !== -1) {
      const next = data.charCodeAt(at + marker.length)
      if (!Number.isNaN(next) && next !== 0x22) return true
      at = data.indexOf(marker, at + marker.length)
    }
  }
  return false
}
