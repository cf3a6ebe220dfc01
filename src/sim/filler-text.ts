import { mix32 } from '../util/hash.ts'

const WORDS = [
  'the', 'model', 'simulated', 'engine', 'returns', 'these', 'filler', 'words', 'as', 'its',
  'answer', 'while', 'a', 'router', 'decides', 'where', 'each', 'request', 'runs', 'and',
  'prefix', 'cache', 'blocks', 'stay', 'warm', 'on', 'one', 'replica', 'so', 'the',
  'next', 'turn', 'is', 'fast', 'batching', 'keeps', 'every', 'step', 'full', 'of',
  'tokens', 'from', 'many', 'streams', 'at', 'once', 'under', 'load', 'latency', 'grows',
  'with', 'context', 'length', 'queue', 'depth', 'and', 'memory', 'pressure', 'in', 'time',
  'stream', 'ends', 'here', 'soon',
] as const

/**
 * The text of generated token `index` for a prompt: one word, with a leading space after the first,
 * so that the concatenated output has exactly as many tokens (under the sim token rule) as were
 * generated. The same prompt always yields the same words.
 */
export function fillerToken(promptHash: number, index: number): string {
  const word = WORDS[mix32((promptHash + Math.imul(index, 0x9e3779b1)) >>> 0) % WORDS.length]!
  return index === 0 ? word : ` ${word}`
}
