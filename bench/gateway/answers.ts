// The upstream's fixed answers: one OpenAI chat.completion, and the same completion streamed as
// `chat.completion.chunk` events. Both carry a `usage` block, as an engine's do (a stream when
// asked with `stream_options.include_usage`), so that Aya's response tap finds the first token
// and the usage in them as it does in production traffic.

export const MODEL = 'llama'

/** Content chunks in the streamed answer; the non-streamed one carries the same words. */
export const STREAM_CHUNKS = 20

/** Stands for the usage object in an answer; nginx fills it in by the request's size. */
export const USAGE = '__USAGE__'

const ID = 'chatcmpl-bench'
const CREATED = 1_765_000_000
const WORDS = Array.from({ length: STREAM_CHUNKS }, (_, i) => `word${i} `)

/** The non-streamed answer (application/json). */
export function completionJson(): string {
  const message = JSON.stringify({ role: 'assistant', content: WORDS.join('') })
  return (
    `{"id":"${ID}","object":"chat.completion","created":${CREATED},"model":"${MODEL}",` +
    `"choices":[{"index":0,"message":${message},"finish_reason":"stop"}],"usage":${USAGE}}`
  )
}

function chunk(choices: string, extra = ''): string {
  return (
    `data: {"id":"${ID}","object":"chat.completion.chunk","created":${CREATED},` +
    `"model":"${MODEL}","choices":${choices}${extra}}\n\n`
  )
}

/**
 * The streamed answer (text/event-stream): a role chunk, STREAM_CHUNKS content chunks, the finish
 * chunk, the usage chunk (empty `choices`, as OpenAI sends it) and `[DONE]`.
 */
export function completionSse(): string {
  const delta = (d: object, finish: string | null) =>
    chunk(`[{"index":0,"delta":${JSON.stringify(d)},"finish_reason":${JSON.stringify(finish)}}]`)
  return [
    delta({ role: 'assistant', content: '' }, null),
    ...WORDS.map((content) => delta({ content }, null)),
    delta({}, 'stop'),
    chunk('[]', `,"usage":${USAGE}`),
    'data: [DONE]\n\n',
  ].join('')
}

/** Bodies of at least this many bytes are the long prompt's, and report its token count. */
export const LARGE_BODY_BYTES = 10_000

/** Roughly what a BPE tokenizer makes of the workloads' prompts (4 characters a token). */
export function promptTokensFor(bodyBytes: number): number {
  return bodyBytes >= LARGE_BODY_BYTES ? 8000 : 250
}

export function usageJson(promptTokens: number): string {
  const total = promptTokens + STREAM_CHUNKS
  return `{"prompt_tokens":${promptTokens},"completion_tokens":${STREAM_CHUNKS},"total_tokens":${total}}`
}

/** An answer as the upstream sends it for a request body of `bodyBytes`. */
export function withUsage(answer: string, bodyBytes: number): string {
  return answer.replaceAll(USAGE, usageJson(promptTokensFor(bodyBytes)))
}
