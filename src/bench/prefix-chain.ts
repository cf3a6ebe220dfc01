import { mix32 } from '../util/hash.ts'
import type { TraceRequest } from './trace-request.ts'

/**
 * Prefix identity computed from a request's hash ids alone, without building its text. It mirrors
 * `prompt-builder.ts`: token 0 is the chat template's role token and content word c (token c + 1)
 * lies in hash-id block ⌊c / blockTokens⌋. Two requests share their first t tokens exactly when
 * they share the ids of every block those tokens touch.
 */

/** A 52-bit number from two 32-bit lanes: collision-free in practice for millions of keys. */
function combine(high: number, low: number): number {
  return (high & 0xf_ffff) * 0x1_0000_0000 + (low >>> 0)
}

/** Chain keys of the request's hash-id blocks, and the words each block holds in this prompt. */
export function chainBlocks(
  request: TraceRequest,
  blockTokens: number | undefined,
): { readonly keys: number[]; readonly words: number[] } {
  const keys: number[] = []
  const words: number[] = []
  const ids = request.hashIds
  if (!ids || blockTokens === undefined) return { keys, words }
  let left = Math.max(0, request.inputTokens - 1)
  let a = 0x243f_6a88
  let b = 0x85a3_08d3
  for (let j = 0; j < ids.length && left > 0; j++) {
    const id = ids[j]!
    a = mix32((Math.imul(a, 0x9e37_79b1) ^ id) >>> 0)
    b = mix32((b + Math.imul(id ^ 0x7f4a_7c15, 0x85eb_ca6b)) >>> 0)
    keys.push(combine(a, b))
    words.push(Math.min(left, blockTokens))
    left -= Math.min(left, blockTokens)
  }
  return { keys, words }
}

/**
 * Keys of the request's full KV blocks (`kvBlockTokens` each) in order: equal keys mean an equal
 * token prefix through that block. Blocks past the hash ids are unique to the request: they get
 * fresh negative keys from `nextUnique`.
 */
export function kvBlockKeys(
  request: TraceRequest,
  blockTokens: number | undefined,
  kvBlockTokens: number,
  nextUnique: () => number,
): number[] {
  const full = Math.floor(request.inputTokens / kvBlockTokens)
  const { keys: chain } = chainBlocks(request, blockTokens)
  const out = new Array<number>(full)
  for (let p = 0; p < full; p++) {
    // The block's last token is (p + 1)·size − 1, i.e. content word (p + 1)·size − 2.
    const lastWord = (p + 1) * kvBlockTokens - 2
    const j = blockTokens === undefined ? chain.length : Math.floor(lastWord / blockTokens)
    const chainKey = chain[j]
    out[p] =
      chainKey === undefined
        ? nextUnique()
        : combine(mix32((chainKey / 0x1_0000_0000) ^ mix32(p)), mix32((chainKey + p) >>> 0))
  }
  return out
}
