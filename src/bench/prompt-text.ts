import { mix32 } from '../util/hash.ts'
import { createSeededRandom } from '../util/random.ts'

/**
 * Words for synthetic prompts. Under the simulator's token rule every word is one token; words are
 * 1–5 letters (mean 3), so a token plus its space is about 4 characters, and Aya's
 * 4-characters-per-token estimate lands near the true count.
 */
const VOCABULARY_SIZE = 4096
const VOCABULARY: readonly string[] = (() => {
  const random = createSeededRandom(0xa7a_b1c)
  const words: string[] = []
  for (let i = 0; i < VOCABULARY_SIZE; i++) {
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
  const random = createSeededRandom(mix32(key))
  const words = new Array<string>(count)
  for (let i = 0; i < count; i++) words[i] = VOCABULARY[(random() * VOCABULARY_SIZE) | 0]!
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
