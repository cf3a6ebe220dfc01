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
  let a = laneASeeded(seed)
  let b = laneBSeeded(seed)
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i)
    a = Math.imul(a ^ code, FNV_PRIME)
    b = Math.imul(b ^ code, LANE_B_PRIME)
  }
  return finish53(a, b, end - start)
}

/**
 * The same hash's parts, for a variant that reads its input another way (`hashBlockChain`): the
 * first lane's state with a 53-bit `seed` folded in,
 */
export function laneASeeded(seed: number): number {
  return (FNV_OFFSET ^ mix32((seed >>> 0) ^ LANE_A_SEED) ^ Math.floor(seed / TWO_POW_32)) >>> 0
}

/** the second lane's, */
export function laneBSeeded(seed: number): number {
  return (FNV_OFFSET ^ mix32(Math.floor(seed / TWO_POW_32) ^ LANE_B_SEED) ^ (seed >>> 0)) >>> 0
}

/** and the 53-bit result from the two lanes' final states and the input's length. */
export function finish53(a: number, b: number, length: number): number {
  return (mix32(a ^ length) & HIGH_MASK) * TWO_POW_32 + mix32(b + length)
}
