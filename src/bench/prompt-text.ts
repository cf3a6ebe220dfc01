import { mix32 } from '../util/hash.ts'
import { createSeededRandom } from '../util/random.ts'

/**
 * Words for synthetic prompts. Under the simulator's token rule every word is one token; words are
 * 1–5 letters (mean 3), so a token plus its space is about 4 characters, and Aya's
 * 4-characters-per-token estimate lands near the true count.
 */
const VOCABULARY_BITS = 12
const VOCABULARY: readonly string[] = (() => {
  const random = createSeededRandom(0xa7a_b1c)
  const words: string[] = []
  for (let i = 0; i < 1 << VOCABULARY_BITS; i++) {
    const length = 1 + Math.floor(random() * 5)
    let word = ''
    for (let k = 0; k < length; k++) word += String.fromCharCode(97 + Math.floor(random() * 26))
    words.push(word)
  }
  return words
})()

/** `count` words, a pure function of `key`, joined by single spaces. */
export function seededWords(key: number, count: number): string {
  if (count <= 0) return ''
  // mulberry32, inlined: this runs for every word of every prompt.
  let a = mix32(key)
  const words = new Array<string>(count)
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    words[i] = VOCABULARY[((t ^ (t >>> 14)) >>> 0) >>> (32 - VOCABULARY_BITS)]!
  }
  return words.join(' ')
}

/** The first `count` space-separated words of `text`. */
export function firstWords(text: string, count: number): string {
  if (count <= 0) return ''
  let seen = 0
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 0x20 && ++seen === count) return text.slice(0, i)
  }
  return text
}
