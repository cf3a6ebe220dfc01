import { StringDecoder } from 'node:string_decoder'
import type { LlmApi } from './llm-request.ts'
import { streamErrorMessage } from './stream-error-message.ts'
import { createUsageObjectScanner } from './usage-object-scanner.ts'

export interface TokenUsage {
  /** Every prompt token the engine was given, cached or not. */
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
  /**
   * The stream carried an error event (Anthropic's `error`, an OpenAI-style `{"error": ...}`
   * chunk, the Responses API's `error` or `response.failed`): it ended in a failure, whatever
   * its status and however it closed.
   */
  readonly sawError?: boolean | undefined
  /**
   * The first error event's message (`error.message`, `response.error.message`), as the engine
   * wrote it: unbounded here, read once at `finish` from the event's bounded head.
   */
  readonly errorMessage?: string | undefined
  /**
   * Bytes of the body the tap saw, as they came (framing included): every generated token reaches
   * the client as at least a byte, so a `usage` claiming more output than this is not believed.
   * Undefined where no tap counted them (the virtual-time bench builds its own): no bound.
   */
  readonly bodyBytes?: number | undefined
}

/**
 * Watches an LLM response as it streams through, without buffering it or slowing it down: it spots
 * content events (for time to first token and inter-token gaps) and the `usage` the upstream
 * reports (OpenAI's usage chunk or body, the Responses API's `response.completed`, Anthropic's
 * `message_start` / `message_delta`). Events are framed as the SSE spec says (LF, CRLF or CR line
 * ends, split anywhere across chunks); what is kept of an event is bounded, and usage is found by a
 * scanner that holds only the usage object, so a body or event of any size still yields it.
 */
export interface ResponseTap {
  onChunk(chunk: Buffer, nowMs: number): void
  /** When the first generated token passed, once it has. */
  readonly firstTokenAtMs: number | undefined
  /** Content events seen so far (streaming): the tokens generated, as the client receives them. */
  readonly contentEvents: number
  finish(): TapResult
}

/**
 * An event that reports a failure in the stream: an object whose first key is `error` (OpenAI
 * and vLLM chunks), unless it is null, or whose `type` is `error` (Anthropic, the Responses API)
 * or `response.failed`. Anchored at the event's start: generated text, which sits inside a
 * string further in, never matches.
 */
const ERROR_EVENT =
  /^\s*\{\s*(?:"error"\s*:\s*(?!null\b)|"type"\s*:\s*"(?:error|response\.failed)")/

/** Content markers sit at the start of an event; the rest of a long one need not be kept. */
const MAX_EVENT_HEAD_CHARS = 1 << 14
/** Longer than any SSE field name: a line whose name runs past it is no `data` line. */
const MAX_FIELD_CHARS = 16

const FIELD = 0
const VALUE_START = 1
const DATA = 2
const IGNORED = 3

export function createResponseTap(api: LlmApi, streaming: boolean): ResponseTap {
  let firstTokenAtMs: number | undefined
  let lastTokenAtMs: number | undefined
  let contentEvents = 0
  let sawError = false
  /** The first error event's data, as far as the event's head was kept: parsed only at the end. */
  let errorHead: string | undefined
  let sawText = false
  let sawBody = false
  let bodyBytes = 0
  let inputTokens: number | undefined
  let cacheReadTokens: number | undefined
  let cacheCreationTokens: number | undefined
  let outputTokens: number | undefined
  const decoder = new StringDecoder('utf8')

  /**
   * The last usage object of the document being read (the body, or one event's data), taken only
   * when the document ends. A later one replaces it whole: a `usage` key inside generated content
   * (a tool call's `input` object in an Anthropic body) comes before the response's own usage,
   * and merged field by field, a `cache_read_input_tokens` the model wrote there was added to the
   * prompt. Across events fields do merge: Anthropic reports input at `message_start` and output
   * at `message_delta`.
   */
  let documentUsage: Readonly<Record<string, unknown>> | undefined
  const usage = createUsageObjectScanner((fields) => {
    documentUsage = fields
  })
  const takeUsage = (): void => {
    const fields = documentUsage
    if (fields === undefined) return
    documentUsage = undefined
    const input = tokenCount(fields.prompt_tokens ?? fields.input_tokens)
    const output = tokenCount(fields.completion_tokens ?? fields.output_tokens)
    if (input !== undefined) inputTokens = input
    if (output !== undefined) outputTokens = output
    // Anthropic counts cached prompt tokens apart from `input_tokens`; OpenAI's cached tokens are
    // a share of `prompt_tokens` (in `*_details`), so only these two add.
    cacheReadTokens = tokenCount(fields.cache_read_input_tokens) ?? cacheReadTokens
    cacheCreationTokens = tokenCount(fields.cache_creation_input_tokens) ?? cacheCreationTokens
  }

  // SSE framing state: the line being read and the event being gathered.
  let lineState = FIELD
  let field = ''
  let afterCr = false
  let eventHead = ''
  let eventHasData = false

  const dataText = (text: string): void => {
    usage.write(text)
    if (eventHead.length < MAX_EVENT_HEAD_CHARS)
      eventHead += text.slice(0, MAX_EVENT_HEAD_CHARS - eventHead.length)
  }

  const startDataLine = (): void => {
    // The data of an event's lines is joined with a line feed.
    if (eventHasData) dataText('\n')
    eventHasData = true
  }

  /** Part of the current line, with no line end in it. */
  const lineText = (text: string, from: number, to: number): void => {
    let i = from
    if (lineState === FIELD) {
      const colon = text.indexOf(':', i)
      const end = colon === -1 || colon > to ? to : colon
      field += text.slice(i, Math.min(end, i + MAX_FIELD_CHARS + 1))
      if (end === to) {
        if (field.length > MAX_FIELD_CHARS) lineState = IGNORED
        return
      }
      lineState = field === 'data' ? VALUE_START : IGNORED
      if (lineState === VALUE_START) startDataLine()
      i = end + 1
    }
    if (lineState === VALUE_START && i < to) {
      if (text.charCodeAt(i) === 0x20) i++
      lineState = DATA
    }
    if (lineState === DATA && i < to) dataText(text.slice(i, to))
  }

  const lineEnd = (nowMs: number): void => {
    if (lineState === FIELD) {
      if (field === '') dispatch(nowMs)
      else if (field === 'data') startDataLine()
    }
    lineState = FIELD
    field = ''
  }

  const dispatch = (nowMs: number): void => {
    if (eventHasData && isContentEvent(api, eventHead)) {
      contentEvents++
      firstTokenAtMs ??= nowMs
      lastTokenAtMs = nowMs
    } else if (eventHasData && ERROR_EVENT.test(eventHead)) {
      sawError = true
      errorHead ??= eventHead
    }
    eventHead = ''
    eventHasData = false
    usage.reset()
    takeUsage()
  }

  const sse = (text: string, nowMs: number): void => {
    let i = 0
    // A CR that ended the last chunk and an LF that starts this one are one line end.
    if (afterCr && text.charCodeAt(0) === 0x0a) i = 1
    afterCr = false
    // The next LF and CR at or after `i`, searched again only once passed: streams end lines with
    // LF alone, and searching for a CR from every line start would rescan the chunk each time.
    let lf = text.indexOf('\n', i)
    let cr = text.indexOf('\r', i)
    while (i < text.length) {
      if (lf !== -1 && lf < i) lf = text.indexOf('\n', i)
      if (cr !== -1 && cr < i) cr = text.indexOf('\r', i)
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf)
      if (end === -1) {
        lineText(text, i, text.length)
        return
      }
      lineText(text, i, end)
      lineEnd(nowMs)
      i = end + 1
      if (text.charCodeAt(end) === 0x0d) {
        if (i === text.length) afterCr = true
        else if (text.charCodeAt(i) === 0x0a) i++
      }
    }
  }

  return {
    get firstTokenAtMs() {
      return firstTokenAtMs
    },
    get contentEvents() {
      return contentEvents
    },
    onChunk(chunk, nowMs) {
      bodyBytes += chunk.length
      let text = decoder.write(chunk)
      if (!sawText && text.length > 0) {
        sawText = true
        // The SSE spec ignores one leading byte order mark; read as text it would hide the first
        // field name, and with it the first event.
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      }
      if (streaming) return sse(text, nowMs)
      firstTokenAtMs ??= nowMs
      lastTokenAtMs = nowMs
      sawBody ||= chunk.length > 0
      usage.write(text)
    },
    finish() {
      // A body ends here, and so does a stream's last event when no blank line closed it.
      takeUsage()
      if (!streaming && sawBody) contentEvents = 1
      const promptTokens =
        inputTokens === undefined &&
        cacheReadTokens === undefined &&
        cacheCreationTokens === undefined
          ? undefined
          : (inputTokens ?? 0) + (cacheReadTokens ?? 0) + (cacheCreationTokens ?? 0)
      const errorMessage = errorHead === undefined ? undefined : streamErrorMessage(errorHead)
      return {
        firstTokenAtMs,
        lastTokenAtMs,
        contentEvents,
        bodyBytes,
        ...(sawError ? { sawError } : {}),
        ...(errorMessage !== undefined ? { errorMessage } : {}),
        usage:
          promptTokens !== undefined || outputTokens !== undefined
            ? { promptTokens: promptTokens ?? 0, completionTokens: outputTokens ?? 0 }
            : undefined,
      }
    },
  }
}

/**
 * A token count as the upstream wrote it, if it is one. Usage is the upstream's own JSON: `1e999`
 * parses as Infinity, and a negative, fractional or huge count learned as a prompt's length would
 * drag the model's characters-per-token estimate to its floor in one response (a negative cache
 * read would even subtract from the prompt). Such a field reads as absent.
 */
function tokenCount(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : undefined
}

/**
 * A streamed event that carries generated tokens: text, reasoning, audio or a tool call's name and
 * arguments (not a role prelude, an empty content part, a usage-only chunk or `[DONE]`).
 */
function isContentEvent(api: LlmApi, data: string): boolean {
  // Deltas are nearly every event of a stream, so they are tested first.
  if (api === 'anthropic.messages') {
    if (data.includes('"content_block_delta"')) {
      return (
        hasText(data, '"text"') || hasText(data, '"partial_json"') || hasText(data, '"thinking"')
      )
    }
    // A tool call's name comes whole at its block's start, before any argument.
    return (
      data.includes('"content_block_start"') &&
      data.includes('tool_use"') &&
      hasText(data, '"name"')
    )
  }
  if (api === 'openai.responses') {
    // Every generated-token event of the Responses API but a tool call's start is a `*.delta`
    // with a string `delta`; the `*.done` and `response.completed` events repeat text already
    // counted.
    if (data.includes('.delta"')) return hasText(data, '"delta"')
    return (
      data.includes('"response.output_item.added"') &&
      data.includes('"function_call"') &&
      hasText(data, '"name"')
    )
  }
  return (
    hasText(data, '"content"') ||
    hasText(data, '"text"') ||
    hasText(data, '"reasoning_content"') ||
    hasText(data, '"reasoning"') ||
    hasText(data, '"refusal"') ||
    hasToolCall(data) ||
    hasAudio(data)
  )
}

/**
 * An OpenAI audio reply's delta (`modalities: ["audio"]`, Qwen-Omni servers): `delta.audio` with a
 * piece of the transcript or of the audio, and no `content` at all.
 */
function hasAudio(data: string): boolean {
  return data.includes('"audio"') && (hasText(data, '"transcript"') || hasText(data, '"data"'))
}

/** `key` is followed by a non-empty string value (JSON whitespace allowed around the colon). */
function hasText(data: string, key: string): boolean {
  for (let at = data.indexOf(key); at !== -1; at = data.indexOf(key, at + key.length)) {
    const value = valueStart(data, at + key.length)
    if (data.charCodeAt(value) === 0x22 && value + 1 < data.length) {
      if (data.charCodeAt(value + 1) !== 0x22) return true
    }
  }
  return false
}

/** An OpenAI tool-call delta: the model has generated at least the function's name. */
function hasToolCall(data: string): boolean {
  const key = '"tool_calls"'
  for (let at = data.indexOf(key); at !== -1; at = data.indexOf(key, at + key.length)) {
    const list = valueStart(data, at + key.length)
    if (data.charCodeAt(list) === 0x5b && data.charCodeAt(skipSpace(data, list + 1)) === 0x7b)
      return true
  }
  return false
}

/** Where the value after a key starts, or -1 when no colon follows it. */
function valueStart(data: string, afterKey: number): number {
  const colon = skipSpace(data, afterKey)
  return data.charCodeAt(colon) === 0x3a ? skipSpace(data, colon + 1) : -1
}

function skipSpace(data: string, from: number): number {
  let i = from
  for (;;) {
    const code = data.charCodeAt(i)
    if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return i
    i++
  }
}
