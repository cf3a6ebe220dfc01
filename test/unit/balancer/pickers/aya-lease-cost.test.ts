import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ayaLeaseCost } from '../../../../src/balancer/pickers/aya-lease-cost.ts'
import { createOutputLengthPredictor } from '../../../../src/llm/output-length-predictor.ts'
import { llmRequest } from './llm-fixtures.ts'

describe('aya lease cost', () => {
  const llm = llmRequest('x'.repeat(4000), { maxTokens: 100 })
  const request = { llm, promptTokens: 1000, kvNeed: 1100, hashes: [1, 2, 3], blockTokens: 200 }

  it('charges the uncached prompt as prefill, and as KV the prompt its blocks do not cover', () => {
    const cost = ayaLeaseCost({ uncachedTokens: 200 }, request, undefined)
    assert.equal(cost.prefillTokens, 200)
    // 600 of the 1,000 prompt tokens are in three pinned blocks, charged by the endpoint.
    assert.equal(cost.kvTokens, 1100 - 600)
    assert.deepEqual(cost.pinnedBlocks, [1, 2, 3])
    assert.equal(cost.pinnedBlockTokens, 200)
  })

  it('re-estimates the KV held as the response streams, each sequence growing its own', () => {
    const outputs = createOutputLengthPredictor()
    const cost = ayaLeaseCost(
      { uncachedTokens: 1000 },
      { ...request, llm: { ...llm, sequences: 2 } },
      outputs,
    )
    // At the cap nothing more is expected: the prompt beyond its blocks, two sequences of 100.
    assert.equal(cost.kvTokensAfter!(100), 1000 - 600 + 2 * 100)
  })
})
