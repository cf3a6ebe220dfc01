import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { hashBlockChain } from '../../../src/util/block-chain-hash.ts'
import { finish53, laneASeeded, laneBSeeded } from '../../../src/util/text-hash.ts'

/** The same hash read with `charCodeAt`, one block at a time: what the scratch copy must equal. */
function reference(text: string, seed: number, blockChars: number, maxBlocks: number): number[] {
  const hashes: number[] = []
  let parent = seed
  for (let start = 0; start < text.length && hashes.length < maxBlocks; start += blockChars) {
    const stop = Math.min(start + blockChars, text.length)
    let a = laneASeeded(parent)
    let b = laneBSeeded(parent)
    let i = start
    for (; i + 1 < stop; i += 2) {
      const pair = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)
      a = Math.imul(a ^ pair, 0x01000193)
      a ^= a >>> 15
      b = Math.imul(b ^ pair, 0x5bd1e995)
      b ^= b >>> 13
    }
    if (i < stop) {
      a = Math.imul(a ^ text.charCodeAt(i), 0x01000193)
      b = Math.imul(b ^ text.charCodeAt(i), 0x5bd1e995)
    }
    parent = finish53(a, b, stop - start)
    hashes.push(parent)
  }
  return hashes
}

describe('hashBlockChain', () => {
  it('equals the charCodeAt reading for any UTF-16 text, block size and cap', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 600 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 2 ** 53 - 1 }),
        (text, blockChars, maxBlocks, seed) => {
          assert.deepEqual(
            hashBlockChain(text, seed, blockChars, maxBlocks),
            reference(text, seed, blockChars, maxBlocks),
          )
        },
      ),
    )
  })

  it('keeps lone surrogates and characters past Latin-1 apart', () => {
    const texts = ['\ud800abc', '\udc00abc', 'éabc', '中abc', '\u0000abc']
    const hashes = texts.map((text) => hashBlockChain(text, 1, 4, 1)[0])
    assert.equal(new Set(hashes).size, texts.length)
  })

  it('hashes texts longer than its scratch copy, blocks of any size whole', () => {
    let text = ''
    for (let i = 0; text.length < 200_000; i++) text += `${i}é中,`
    for (const blockChars of [64, 3000, 4096, 100_000]) {
      assert.deepEqual(
        hashBlockChain(text, 7, blockChars, 1_000),
        reference(text, 7, blockChars, 1_000),
      )
    }
  })

  it('gives a different chain for every pair-position of a difference', () => {
    const base = 'x'.repeat(64)
    const seen = new Set<number>([hashBlockChain(base, 3, 64, 1)[0]!])
    for (let at = 0; at < 64; at++) {
      for (const code of [0x79, 0x78 ^ 0x8000, 0x78 ^ 0x0100]) {
        const changed = `${base.slice(0, at)}${String.fromCharCode(code)}${base.slice(at + 1)}`
        seen.add(hashBlockChain(changed, 3, 64, 1)[0]!)
      }
    }
    assert.equal(seen.size, 1 + 64 * 3)
  })
})
