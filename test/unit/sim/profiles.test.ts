import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  A100_LLAMA3_8B,
  getEngineProfile,
  H100_LLAMA3_8B,
  parseProfileList,
} from '../../../src/sim/profiles.ts'

describe('sim profiles', () => {
  it('describes Llama-3.1-8B on H100 and A100 with vLLM defaults', () => {
    assert.equal(H100_LLAMA3_8B.maxModelLen, 131_072)
    assert.deepEqual(
      [H100_LLAMA3_8B.maxNumSeqs, H100_LLAMA3_8B.maxNumBatchedTokens, H100_LLAMA3_8B.numGpuBlocks],
      [1024, 8192, 26_900],
    )
    assert.deepEqual([A100_LLAMA3_8B.maxNumSeqs, A100_LLAMA3_8B.maxNumBatchedTokens], [256, 2048])
    assert.equal(getEngineProfile('a100-llama3-8b'), A100_LLAMA3_8B)
  })

  it('repeats a single profile for every replica', () => {
    assert.deepEqual(parseProfileList('h100-llama3-8b', 3), [
      H100_LLAMA3_8B,
      H100_LLAMA3_8B,
      H100_LLAMA3_8B,
    ])
  })

  it('expands a counted list in order', () => {
    const profiles = parseProfileList('h100-llama3-8b:2,a100-llama3-8b:1', 3)
    assert.deepEqual(
      profiles.map((p) => p.name),
      ['h100-llama3-8b', 'h100-llama3-8b', 'a100-llama3-8b'],
    )
  })

  it('rejects a counted list that disagrees with the replica count', () => {
    assert.throws(
      () => parseProfileList('h100-llama3-8b:2,a100-llama3-8b:2', 3),
      /describes 4 replicas/,
    )
  })

  it('rejects unknown profiles and bad counts', () => {
    assert.throws(() => parseProfileList('tpu-llama:1', 1), /unknown sim profile/)
    assert.throws(() => parseProfileList('h100-llama3-8b:0', 1), /bad replica count/)
    assert.throws(() => parseProfileList('h100-llama3-8b:x', 1), /bad replica count/)
    assert.throws(() => parseProfileList('', 1), /empty/)
  })
})
