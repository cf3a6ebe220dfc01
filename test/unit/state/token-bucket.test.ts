import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  msUntilFull,
  refilledTokens,
  retryAfterMs,
  takeFromBucket,
  validateBucket,
} from '../../../src/state/token-bucket.ts'

describe('token bucket arithmetic', () => {
  const spec = { capacity: 10, refillPerSecond: 4 }

  it('treats a missing bucket as full', () => {
    assert.equal(refilledTokens(undefined, spec, 123), 10)
  })

  it('refills linearly and caps at capacity', () => {
    const state = { tokens: 2, updatedAtMs: 1000 }
    assert.equal(refilledTokens(state, spec, 1500), 4)
    assert.equal(refilledTokens(state, spec, 100_000), 10)
  })

  it('ignores time going backwards', () => {
    assert.equal(refilledTokens({ tokens: 2, updatedAtMs: 1000 }, spec, 900), 2)
  })

  it('takes all of the cost or none of it', () => {
    const state = { tokens: 3, updatedAtMs: 0 }
    assert.deepEqual(takeFromBucket(state, spec, 3, 0), {
      result: { allowed: true, remaining: 0, retryAfterMs: 0 },
      tokens: 0,
    })
    assert.deepEqual(takeFromBucket(state, spec, 4, 0), {
      result: { allowed: false, remaining: 3, retryAfterMs: 250 },
      tokens: 3,
    })
  })

  it('answers Infinity when the cost can never be met', () => {
    assert.equal(retryAfterMs(0, spec, 11), Number.POSITIVE_INFINITY)
    assert.equal(retryAfterMs(0, { capacity: 5, refillPerSecond: 0 }, 1), Number.POSITIVE_INFINITY)
  })

  it('says how long until full, Infinity without refill', () => {
    assert.equal(msUntilFull(10, spec), 0)
    assert.equal(msUntilFull(8, spec), 500)
    assert.equal(msUntilFull(8, { capacity: 10, refillPerSecond: 0 }), Number.POSITIVE_INFINITY)
  })

  it('rejects specs and costs that make no sense', () => {
    assert.throws(() => validateBucket({ capacity: 0, refillPerSecond: 1 }, 1), /capacity/)
    assert.throws(() => validateBucket({ capacity: 1, refillPerSecond: -1 }, 1), /refillPerSecond/)
    assert.throws(() => validateBucket(spec, -1), /cost/)
    assert.doesNotThrow(() => validateBucket({ capacity: 1, refillPerSecond: 0 }, 0))
  })

  it('gives the smallest whole millisecond wait that suffices (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 1000, noNaN: true }),
        fc.double({ min: 0.001, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (capacity, refillPerSecond, tokensShare, costShare) => {
          const bucket = { capacity, refillPerSecond }
          const tokens = capacity * tokensShare
          const cost = capacity * costShare
          const waitMs = retryAfterMs(tokens, bucket, cost)
          const state = { tokens, updatedAtMs: 0 }
          if (cost <= tokens) return waitMs === 0
          assert.ok(Number.isInteger(waitMs) && waitMs >= 1)
          assert.ok(refilledTokens(state, bucket, waitMs) >= cost, 'enough after waiting')
          assert.ok(refilledTokens(state, bucket, waitMs - 1) < cost, 'not enough a ms sooner')
          return true
        },
      ),
    )
  })
})
