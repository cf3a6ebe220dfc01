import { type Dispatcher, request } from 'undici'

/** One streaming chat completion as the client saw it; times are real `performance.now()` ms. */
export interface StreamResult {
  readonly ok: boolean
  readonly status: number
  readonly error?: string | undefined
  readonly firstContentMs?: number | undefined
  readonly endMs: number
  readonly contentChunks: number
  readonly promptTokens?: number | undefined
  readonly completionTokens?: number | undefined
  /** `usage.prompt_tokens_details.cached_tokens`, when the engine reports it. */
  readonly cachedPromptTokens?: number | undefined
}

export interface StreamOptions {
  readonly dispatcher: Dispatcher
  /** The whole exchange, headers to `[DONE]`, must finish within this (real ms). */
  readonly timeoutMs: number
  /** Called for every gap between consecutive content chunks (real ms). */
  readonly onGap: (gapMs: number) => void
}

interface ChunkJson {
  choices?: Array<{ delta?: { content?: unknown }; text?: unknown }>
  usage?: {
    prompt_tokens?: unknown
    completion_tokens?: unknown
    prompt_tokens_details?: { cached_tokens?: unknown } | null
  } | null
  error?: unknown
}

/**
 * Sends one streaming chat completion and reads its SSE stream. A content chunk is one whose
 * delta has non-empty `content`; TTFT ends at the first. Non-2xx, a stream without `[DONE]`, an
 * error event or the timeout make the request failed.
 */
export async function streamChat(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: StreamOptions,
): Promise<StreamResult> {
  let firstContentMs: number | undefined
  let lastContentMs = 0
  let contentChunks = 0
  let promptTokens: number | undefined
  let completionTokens: number | undefined
  let cachedPromptTokens: number | undefined
  let sawDone = false
  let streamError: string | undefined
  const fail = (status: number, error: string): StreamResult => ({
    ok: false,
    status,
    error,
    firstContentMs,
    endMs: performance.now(),
    contentChunks,
  })

  const onData = (payload: string, nowMs: number): void => {
    if (payload === '[DONE]') {
      sawDone = true
      return
    }
    let chunk: ChunkJson
    try {
      chunk = JSON.parse(payload) as ChunkJson
    } catch {
      streamError = 'bad SSE JSON'
      return
    }
    if (chunk.error !== undefined) streamError = `error event: ${JSON.stringify(chunk.error)}`
    const choice = chunk.choices?.[0]
    const content = choice?.delta?.content ?? choice?.text
    if (typeof content === 'string' && content !== '') {
      if (firstContentMs === undefined) firstContentMs = nowMs
      else options.onGap(nowMs - lastContentMs)
      lastContentMs = nowMs
      contentChunks++
    }
    if (chunk.usage && typeof chunk.usage.prompt_tokens === 'number') {
      promptTokens = chunk.usage.prompt_tokens
      if (typeof chunk.usage.completion_tokens === 'number') {
        completionTokens = chunk.usage.completion_tokens
      }
      const cached = chunk.usage.prompt_tokens_details?.cached_tokens
      if (typeof cached === 'number') cachedPromptTokens = cached
    }
  }

  let status = 0
  try {
    const res = await request(url, {
      method: 'POST',
      body,
      headers,
      dispatcher: options.dispatcher,
      signal: AbortSignal.timeout(options.timeoutMs),
    })
    status = res.statusCode
    if (status < 200 || status >= 300) {
      const text = await res.body.text()
      return fail(status, `HTTP ${status}: ${text.slice(0, 200)}`)
    }
    res.body.setEncoding('utf8')
    let buffer = ''
    for await (const piece of res.body as AsyncIterable<string>) {
      const nowMs = performance.now()
      buffer += piece
      let end = buffer.indexOf('\n\n')
      while (end >= 0) {
        for (const line of buffer.slice(0, end).split('\n')) {
          if (line.startsWith('data:')) onData(line.slice(5).trim(), nowMs)
        }
        buffer = buffer.slice(end + 2)
        end = buffer.indexOf('\n\n')
      }
    }
  } catch (error) {
    const name = (error as Error).name
    return fail(status, name === 'TimeoutError' ? 'client timeout' : (error as Error).message)
  }
  if (streamError) return fail(status, streamError)
  if (!sawDone) return fail(status, 'stream ended without [DONE]')
  return {
    ok: true,
    status,
    firstContentMs,
    endMs: performance.now(),
    contentChunks,
    promptTokens,
    completionTokens,
    cachedPromptTokens,
  }
}
