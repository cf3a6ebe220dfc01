const WIDTH = 4
const RADIX = 36
const MAX_FIXED = RADIX ** WIDTH
/** The character codes of the base-36 digits, by value. */
const DIGIT_CODES = Uint8Array.from('0123456789abcdefghijklmnopqrstuvwxyz', (c) => c.charCodeAt(0))
const NEWLINE = 0x0a

/**
 * A prompt given as token ids, written as text for prefix hashing: each id as four base-36 digits.
 * Fixed width keeps three properties the prefix index relies on: a shared token prefix is a shared
 * text prefix, distinct id sequences are distinct texts, and the default 64-character hash block is
 * exactly 16 tokens, vLLM's default KV block. Ids past 36⁴ (no tokenizer has that many) are written
 * in braces, which no digit run contains, so the text still decodes to one sequence.
 */
export function tokenIdsText(ids: readonly number[]): string {
  return tokenIdListsText([ids])
}

/**
 * Several prompts of token ids (a completions or embeddings batch) as their tokenIdsText, one per
 * line. The digits are written into one byte buffer, decoded once: a body at the largest allowed
 * size holds millions of ids, and building the text a string per id (toString, padStart, `+=`) or
 * a string per prompt cost 400–500 ns each, a second or more of blocked event loop for one request
 * (bench/hot-paths.ts).
 */
export function tokenIdListsText(lists: readonly (readonly number[])[]): string {
  let length = Math.max(0, lists.length - 1)
  for (const ids of lists) {
    for (const id of ids) length += id < MAX_FIXED ? WIDTH : id.toString(RADIX).length + 2
  }
  const bytes = Buffer.allocUnsafe(length)
  let at = 0
  for (let list = 0; list < lists.length; list++) {
    if (list > 0) bytes[at++] = NEWLINE
    for (const id of lists[list]!) {
      if (id < MAX_FIXED) {
        let rest = id
        for (let digit = WIDTH - 1; digit >= 0; digit--) {
          bytes[at + digit] = DIGIT_CODES[rest % RADIX]!
          rest = Math.floor(rest / RADIX)
        }
        at += WIDTH
      } else {
        at += bytes.write(`{${id.toString(RADIX)}}`, at, 'latin1')
      }
    }
  }
  return bytes.toString('latin1', 0, at)
}
