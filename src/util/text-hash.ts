import { mix32 } from './hash.ts'

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
// A second lane with a different odd multiplier (murmur2's), so the lanes collide independently.
const LANE_B_PRIME = 0x5bd1e995
const LANE_A_SEED = 0x5eed0001
const LANE_B_SEED = 0x5eed0002
const TWO_POW_32 = 0x1_0000_0000
const HIGH_MASK = 0x1f_ffff

/**
 * A 53-bit hash of `text[start, end)`: a safe integer, so it keys a Map or Set exactly. `seed` is
 * folded in first, so passing the previous block's hash chains blocks (equal hash ⇒ equal prefix,
 * as vLLM's prefix cache and GIE's approximate index do). Two 32-bit FNV-style lanes, finalised
 * with murmur3's fmix32. A collision costs one wrong routing guess, never correctness.
 */
export function hashText53(text: string, start = 0, end = text.length, seed = 0): number {
  const seedHigh = Math.floor(seed / TWO_POW_32)
  const seedLow = seed >>> 0
  let a = (FNV_OFFSET ^ mix32(seedLow ^ LANE_A_SEED) ^ seedHigh) >>> 0
  let b = (FNV_OFFSET ^ mix32(seedHigh ^ LANE_B_SEED) ^ seedLow) >>> 0
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i)
    a = Math.imul(a ^ code, FNV_PRIME)
    b = Math.imul(b ^ code, LANE_B_PRIME)
  }
  const length = end - start
  return (mix32(a ^ length) & HIGH_MASK) * TWO_POW_32 + mix32(b + length)
}
