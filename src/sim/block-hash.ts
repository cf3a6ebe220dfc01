import { hashKey32 } from '../util/hash.ts'

/** A 53-bit hash (a safe integer) of a string: two independent 32-bit hashes, combined. */
export function hash53(text: string): number {
  const high = hashKey32(text, 0x5eed_0001) & 0x1f_ffff
  const low = hashKey32(text, 0x5eed_0002)
  return high * 0x1_0000_0000 + low
}

/** Chains a block's hash to its parent's, as vLLM's prefix cache does: equal hash ⇒ equal prefix. */
export function chainBlockHash(parentHash: number | undefined, blockText: string): number {
  return hash53(`${parentHash ?? 'root'}\u0001${blockText}`)
}

/** The hash of the full blocks of `tokens`, each chained to the one before. A partial tail is left out. */
export function blockHashesOf(tokens: readonly string[], blockSizeTokens = 16): number[] {
  const hashes: number[] = []
  let parent: number | undefined
  for (let end = blockSizeTokens; end <= tokens.length; end += blockSizeTokens) {
    parent = chainBlockHash(parent, tokens.slice(end - blockSizeTokens, end).join(' '))
    hashes.push(parent)
  }
  return hashes
}
