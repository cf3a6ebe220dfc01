import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createPooledRates } from '../../../../src/balancer/pickers/aya-pooled-rates.ts'
import type { EndpointCapacity } from '../../../../src/llm/endpoint-capacity.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'

/** Capacity estimates as given: `[tokens/s, samples]` per endpoint id. */
function capacityOf(estimates: Record<string, readonly [number, number]>): EndpointCapacity {
  return {
    get: (id: string) => ({
      prefillTokensPerSec: estimates[id]![0],
      decodeStepMs: 20,
      samples: estimates[id]![1],
    }),
  } as unknown as EndpointCapacity
}

describe('aya pooled rates', () => {
  const eligible = makeEndpoints([1, 1])
  const [a, b] = eligible.map((e) => e.id) as [string, string]

  it('uses the prior where nothing is learned', () => {
    const rates = createPooledRates({ priorTokensPerSec: 10_000, rateNoise: 0.5 })
    rates.pool(eligible, undefined)
    assert.equal(Math.round(rates.rateOf(0)), 10_000)
    rates.pool(eligible, capacityOf({ [a]: [30_000, 0], [b]: [5_000, 0] }))
    assert.equal(Math.round(rates.rateOf(1)), 10_000)
  })

  it('pulls a few noisy samples toward the fleet, and lets many well-sampled ones stand apart', () => {
    const rates = createPooledRates({ priorTokensPerSec: 10_000, rateNoise: 0.5 })
    // Two samples each, 20 % apart: noise explains the spread, so both read alike.
    rates.pool(eligible, capacityOf({ [a]: [22_000, 2], [b]: [18_000, 2] }))
    assert.ok(Math.abs(rates.rateOf(0) / rates.rateOf(1) - 1) < 0.01)
    // Two hundred samples each, 2× apart: an H100 and an A100, kept apart.
    rates.pool(eligible, capacityOf({ [a]: [30_000, 200], [b]: [15_000, 200] }))
    assert.ok(rates.rateOf(0) / rates.rateOf(1) > 1.9)
  })
})
