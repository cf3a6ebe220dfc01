import { endianness } from 'node:os'
import { finish53, laneASeeded, laneBSeeded } from './text-hash.ts'

// hashText53's multipliers (FNV's and murmur2's), written again on purpose: V8 does not fold an
// imported binding into the loop as it does a local constant, and imported, the 32 kB prompt's
// blocks took 55 µs against 43 µs (dist, Node 20).
const LANE_A_MULTIPLIER = 0x01000193
const LANE_B_MULTIPLIER = 0x5bd1e995

/** Characters of the text copied out at a time, at least: whole blocks, so each is in one copy. */
const SCRATCH_CHARS = 65_536

// The text's UTF-16 code units, copied out in one native call: `charCodeAt` per character cost
// as much as the hashing itself (a 32 kB prompt's blocks took 78 µs with it, 47 µs from here, on
// Node 20). Allocated on first use and kept: hashing is synchronous, so one buffer serves all.
let scratchBytes: Buffer | undefined
let scratchCodes: Uint16Array | undefined
let bigEndian: boolean | undefined

function codeUnitsOf(text: string, from: number, to: number): Uint16Array {
  if (scratchCodes === undefined || scratchCodes.length < to - from) {
    const chars = Math.max(SCRATCH_CHARS, to - from)
    scratchBytes = Buffer.allocUnsafeSlow(chars * 2)
    scratchCodes = new Uint16Array(scratchBytes.buffer, scratchBytes.byteOffset, chars)
    bigEndian = endianness() === 'BE'
  }
  const bytes = scratchBytes!.write(text.slice(from, to), 0, 'utf16le')
  // `utf16le` is little-endian whatever the platform; the view reads in the platform's order.
  if (bigEndian) scratchBytes!.subarray(0, bytes).swap16()
  return scratchCodes
}

/**
 * Chained 53-bit hashes of `text`'s `blockChars`-character blocks (the last may be partial), each
 * seeded with the one before it and the first with `seed`, for at most `maxBlocks` blocks: equal
 * hashes mean equal prefixes up to that block. The lanes of `hashText53`, each fed two code units
 * a step and folding its high bits down after every multiply (a multiply carries only upward, so
 * without the fold the second unit of each pair would reach the low bits of neither lane), then
 * finalised alike. The values differ from `hashText53`'s over the same block; only equality
 * between hashes made here counts.
 */
export function hashBlockChain(
  text: string,
  seed: number,
  blockChars: number,
  maxBlocks: number,
): number[] {
  const hashes: number[] = []
  const end = Math.min(text.length, blockChars * maxBlocks)
  // Whole blocks per copy, at least one: a block is hashed from one copy.
  const copyChars = Math.max(1, Math.floor(SCRATCH_CHARS / blockChars)) * blockChars
  let parent = seed
  for (let copyStart = 0; copyStart < end; copyStart += copyChars) {
    const copied = Math.min(end, copyStart + copyChars) - copyStart
    const codes = codeUnitsOf(text, copyStart, copyStart + copied)
    for (let start = 0; start < copied; start += blockChars) {
      parent = hashBlock(codes, start, Math.min(start + blockChars, copied), parent)
      hashes.push(parent)
    }
  }
  return hashes
}

/** One block, `codes[start, stop)`, seeded with the previous block's hash. */
function hashBlock(codes: Uint16Array, start: number, stop: number, seed: number): number {
  // Lane states as int32 (`| 0`), which keeps the loop in integer registers; the bits are the same.
  let a = laneASeeded(seed) | 0
  let b = laneBSeeded(seed) | 0
  let i = start
  for (const pairsEnd = stop - ((stop - start) & 1); i < pairsEnd; i += 2) {
    const pair = codes[i]! | (codes[i + 1]! << 16)
    a = Math.imul(a ^ pair, LANE_A_MULTIPLIER)
    a ^= a >>> 15
    b = Math.imul(b ^ pair, LANE_B_MULTIPLIER)
    b ^= b >>> 13
  }
  if (i < stop) {
    a = Math.imul(a ^ codes[i]!, LANE_A_MULTIPLIER)
    b = Math.imul(b ^ codes[i]!, LANE_B_MULTIPLIER)
  }
  return finish53(a, b, stop - start)
}
