import { blockHashesOf, chainBlockHash } from './block-hash.ts'

/**
 * The simulator's token rule, deterministic and invertible:
 *
 * - **Text:** a token is a maximal run of non-whitespace characters (`/\S+/`). `"a  b\nc"` is 3
 *   tokens; whitespace itself is never a token.
 * - **Chat template:** messages are flattened in order; each message is one role-marker token
 *   `<|role|>` followed by the tokens of its content. No generation prompt is appended. A content
 *   array contributes the tokens of its `text` parts; other parts (images, audio) count 0.
 *
 * So a single-message chat whose content has W words is W + 1 prompt tokens, and a benchmark builds
 * a prompt of exactly N tokens from N − 1 words.
 */
export const CHAT_TOKENS_PER_MESSAGE = 1

export interface ChatMessageLike {
  readonly role?: unknown
  readonly content?: unknown
}

const WORD = /\S+/g

export function textTokens(text: string): string[] {
  return text.match(WORD) ?? []
}

/** JavaScript's `\s`, by char code, so counting does not allocate. */
function isSpaceCode(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d)
  if (c < 0xa0) return false
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  )
}

export function countTextTokens(text: string): number {
  let count = 0
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const isSpace = isSpaceCode(text.charCodeAt(i))
    if (!isSpace && !inWord) count++
    inWord = !isSpace
  }
  return count
}

/** The text of a message's content under the template: a string, or the `text` parts of an array. */
export function messageContentText(content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  const texts: string[] = []
  for (const part of content) {
    if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
      const text = (part as { text?: unknown }).text
      if (typeof text === 'string') texts.push(text)
    }
  }
  return texts.join(' ')
}

export function roleMarker(role: unknown): string {
  return `<|${typeof role === 'string' ? role : 'user'}|>`
}

/** The flattened token sequence of chat messages under the template above. */
export function chatTokens(messages: readonly ChatMessageLike[]): string[] {
  const tokens: string[] = []
  for (const message of messages) {
    tokens.push(roleMarker(message.role))
    for (const word of textTokens(messageContentText(message.content))) tokens.push(word)
  }
  return tokens
}

export function countChatTokens(messages: readonly ChatMessageLike[]): number {
  let count = 0
  for (const message of messages) {
    count += CHAT_TOKENS_PER_MESSAGE + countTextTokens(messageContentText(message.content))
  }
  return count
}

/** How many content words a chat of `messageCount` messages needs to total `promptTokens`. */
export function contentWordsForPromptTokens(promptTokens: number, messageCount = 1): number {
  const words = promptTokens - messageCount * CHAT_TOKENS_PER_MESSAGE
  if (words < 0) {
    throw new Error(`${promptTokens} tokens is fewer than the template's ${messageCount} markers`)
  }
  return words
}

/** What the engine needs to know about a prompt: its length and its prefix-cache identity. */
export interface PromptIdentity {
  readonly promptTokens: number
  /** Chained hashes of every full block of the prompt. Equal text prefixes give equal hashes. */
  readonly promptBlockHashes: readonly number[]
  /** A hash of the whole prompt, partial tail included: seeds the hashes of generated blocks. */
  readonly promptHash: number
}

export function promptIdentity(tokens: readonly string[], blockSizeTokens = 16): PromptIdentity {
  const promptBlockHashes = blockHashesOf(tokens, blockSizeTokens)
  const tailStart = promptBlockHashes.length * blockSizeTokens
  const tail = tokens.slice(tailStart).join(' ')
  return {
    promptTokens: tokens.length,
    promptBlockHashes,
    promptHash: chainBlockHash(promptBlockHashes.at(-1), `tail:${tokens.length}:${tail}`),
  }
}
