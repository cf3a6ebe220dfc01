const WIDTH = 4
const RADIX = 36
const MAX_FIXED = RADIX ** WIDTH

/**
 * A prompt given as token ids, written as text for prefix hashing: each id as four base-36 digits.
 * Fixed width keeps three properties the prefix index relies on: a shared token prefix is a shared
 * text prefix, distinct id sequences are distinct texts, and the default 64-character hash block is
 * exactly 16 tokens, vLLM's default KV block. Ids past 36⁴ (no tokenizer has that many) are written
 * in braces, which no digit run contains, so the text still decodes to one sequence.
 */
export function tokenIdsText(ids: readonly number[]): string {
  let out = ''
  for (const id of ids) {
    out += id < MAX_FIXED ? id.toString(RADIX).padStart(WIDTH, '0') : `{${id.toString(RADIX)}}`
  }
  return out
}
