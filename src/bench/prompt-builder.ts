import { mix32 } from '../util/hash.ts'
import { firstWords, seededWords } from './prompt-text.ts'
import type { TraceRequest } from './trace-request.ts'

/** The only message of a replayed request: no system prompt is added to any trace. */
export interface ChatMessage {
  readonly role: 'user'
  readonly content: string
}

export interface PromptBuilderOptions {
  readonly seed: number
  /** Words per Mooncake hash id (512 × length scale); undefined when rows carry no hash ids. */
  readonly blockTokens: number | undefined
  /** Hash-id texts kept ready; older ones are rebuilt on demand. Default 4096. */
  readonly cacheSize?: number
}

export interface PromptBuilder {
  /** The message content: `inputTokens − 1` words, so the chat template's role token completes it. */
  content(request: TraceRequest): string
  messages(request: TraceRequest): ChatMessage[]
}

/**
 * Builds prompt text whose simulator token count is exactly the trace's input length (one role
 * token plus one token per word). A Mooncake hash id always expands to the same `blockTokens`
 * words, so equal leading ids give byte-identical prefixes; a partial last block is truncated.
 * Rows without hash ids get words seeded by the run seed and the row, unique to the row.
 */
export function createPromptBuilder(options: PromptBuilderOptions): PromptBuilder {
  const seed = options.seed >>> 0
  const cacheSize = options.cacheSize ?? 4096
  const blocks = new Map<number, string>()

  const blockText = (hashId: number, words: number): string => {
    let text = blocks.get(hashId)
    if (text === undefined) {
      text = seededWords(mix32(seed ^ 0xb10c) ^ mix32(hashId), words)
      if (blocks.size >= cacheSize) blocks.delete(blocks.keys().next().value!)
      blocks.set(hashId, text)
    }
    return text
  }
  const uniqueText = (request: TraceRequest, words: number): string =>
    seededWords(mix32(seed ^ 0x0e1c) ^ mix32(request.id + 0x9e37), words)

  const content = (request: TraceRequest): string => {
    const words = Math.max(0, request.inputTokens - 1)
    const ids = request.hashIds
    const blockTokens = options.blockTokens
    if (!ids || ids.length === 0 || blockTokens === undefined) return uniqueText(request, words)
    const parts: string[] = []
    let left = words
    for (let j = 0; j < ids.length && left > 0; j++) {
      const text = blockText(ids[j]!, blockTokens)
      parts.push(left >= blockTokens ? text : firstWords(text, left))
      left -= Math.min(left, blockTokens)
    }
    // Rounding in the length scale can ask for a few words beyond the last id: unique to the row.
    if (left > 0) parts.push(uniqueText(request, left))
    return parts.join(' ')
  }

  return {
    content,
    messages: (request) => [{ role: 'user', content: content(request) }],
  }
}
