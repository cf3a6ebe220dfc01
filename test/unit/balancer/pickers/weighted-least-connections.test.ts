import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createWeightedLeastConnectionsPicker } from '../../../../src/balancer/pickers/weighted-least-connections.ts'
import { countPicks, hold, makeEndpoints } from '../../../conformance/picker-fixtures.ts'

describe('weighted-least-connections picker', () => {
  it('picks the lowest inflight / weight', () => {
    const picker = createWeightedLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 3])
    hold(eligible[0]!, 1)
    hold(eligible[1]!, 2) // 2 / 3 < 1 / 1
    assert.equal(picker.pick(eligible, { attempt: 0 })?.id, 'e1')
    hold(eligible[1]!, 2) // 4 / 3 > 1 / 1
    assert.equal(picker.pick(eligible, { attempt: 0 })?.id, 'e0')
  })

  it('loads an idle fleet in proportion to weight', () => {
    const picker = createWeightedLeastConnectionsPicker()
    const counts = countPicks(picker, makeEndpoints([1, 3]), 400)
    assert.deepEqual(Object.fromEntries(counts), { e0: 100, e1: 300 })
  })

  it('fills held requests in proportion to weight', () => {
    const picker = createWeightedLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 3])
    for (let i = 0; i < 40; i++) picker.pick(eligible, { attempt: 0 })!.begin()
    assert.deepEqual(
      eligible.map((e) => e.inflight),
      [10, 30],
    )
  })

  it('spreads ties in proportion to weight (smooth round robin among the tied)', () => {
    const picker = createWeightedLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 2, 1])
    hold(eligible[0]!, 1)
    hold(eligible[1]!, 2) // 2 / 2 ties with 1 / 1
    hold(eligible[2]!, 5)
    const counts = countPicks(picker, eligible, 300)
    assert.deepEqual(Object.fromEntries(counts), { e0: 100, e1: 200 })
  })

  it('skips excluded endpoints', () => {
    const picker = createWeightedLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 5, 1])
    hold(eligible[2]!, 9)
    assert.equal(picker.pick(eligible, { attempt: 1, exclude: new Set(['e1']) })?.id, 'e0')
  })
})
