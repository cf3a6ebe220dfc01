import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { retryAfterHintMs } from '../../../src/resilience/retry-after-hint.ts'

describe('retry-after hint', () => {
  it('rounds a predicted wait up to whole seconds within [1 s, 60 s]', () => {
    assert.equal(retryAfterHintMs(0), 1_000)
    assert.equal(retryAfterHintMs(-5), 1_000)
    assert.equal(retryAfterHintMs(1_001), 2_000)
    assert.equal(retryAfterHintMs(59_999), 60_000)
  })

  it('says 60 s, not Infinity or hours, when the wait is unknown or long', () => {
    assert.equal(retryAfterHintMs(Number.POSITIVE_INFINITY), 60_000)
    assert.equal(retryAfterHintMs(Number.NaN), 60_000)
    assert.equal(retryAfterHintMs(5 * 3_600_000), 60_000)
  })
})
