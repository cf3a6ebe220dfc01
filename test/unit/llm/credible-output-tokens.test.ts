import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { credibleOutputTokens } from '../../../src/llm/credible-output-tokens.ts'

const unbounded = { maxTokens: undefined, sequences: 1, bodyBytes: undefined }

describe('credible output tokens', () => {
  test('believes a claim within every bound', () => {
    assert.equal(credibleOutputTokens(120, { maxTokens: 256, sequences: 1, bodyBytes: 4000 }), 120)
  })

  test('with no bound known, believes the claim as it stands', () => {
    assert.equal(credibleOutputTokens(5_000_000, unbounded), 5_000_000)
  })

  test('caps a claim at max_tokens for each sequence', () => {
    assert.equal(credibleOutputTokens(5_000_000, { ...unbounded, maxTokens: 32 }), 32)
    assert.equal(credibleOutputTokens(5_000_000, { ...unbounded, maxTokens: 32, sequences: 3 }), 96)
    assert.equal(credibleOutputTokens(80, { ...unbounded, maxTokens: 32, sequences: 3 }), 80)
    assert.equal(credibleOutputTokens(10, { ...unbounded, maxTokens: 0 }), 0)
  })

  test('caps a claim at the bytes of the body that carried it', () => {
    assert.equal(credibleOutputTokens(5_000_000, { ...unbounded, bodyBytes: 612 }), 612)
    assert.equal(credibleOutputTokens(0, { ...unbounded, bodyBytes: 612 }), 0)
  })

  test('takes the tighter of the two bounds', () => {
    const bounds = { maxTokens: 1000, sequences: 2, bodyBytes: 700 }
    assert.equal(credibleOutputTokens(5_000_000, bounds), 700)
    assert.equal(credibleOutputTokens(5_000_000, { ...bounds, bodyBytes: 1_000_000 }), 2000)
  })
})
