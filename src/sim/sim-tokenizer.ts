import {
  createPromptHasher,
  type PromptHasher,
  type PromptIdentity,
  promptIdentityOf,
} from './block-hash.ts'

export type { PromptIdentity } from './block-hash.ts'

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

/** The identity of a token sequence; see `block-hash.ts`. */
export function promptIdentity(tokens: readonly string[], blockSizeTokens = 16): PromptIdentity {
  return promptIdentityOf(tokens, blockSizeTokens)
}

/** Feeds the words of `text` to a hasher without splitting it into strings. */
function hashWords(hasher: PromptHasher, text: string): void {
  let start = -1
  for (let i = 0; i < text.length; i++) {
    if (isSpaceCode(text.charCodeAt(i))) {
      if (start >= 0) hasher.token(text, start, i)
      start = -1
    } else if (start < 0) {
      start = i
    }
  }
  if (start >= 0) hasher.token(text, start, text.length)
}

/** The identity of a completions prompt under the text rule; equal to `promptIdentity(textTokens(text))`. */
export function textPromptIdentity(text: string, blockSizeTokens = 16): PromptIdentity {
  const hasher = createPromptHasher(blockSizeTokens)
  hashWords(hasher, text)
  return hasher.identity()
}

/** The identity of chat messages under the template; equal to `promptIdentity(chatTokens(messages))`. */
export function chatPromptIdentity(
  messages: readonly ChatMessageLike[],
  blockSizeTokens = 16,
): PromptIdentity {
  const hasher = createPromptHasher(blockSizeTokens)
  for (const message of messages) {
    hasher.token(roleMarker(message.role))
    hashWords(hasher, messageContentText(message.content))
  }
  return hasher.identity()
}
